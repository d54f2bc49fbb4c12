// ApiClient: calls Puddle's REST API with a token and decodes its replies.
//
// The token comes from an API key (exchanged on first use with POST
// /api/v1/auth/token and kept in memory for the process) or is set directly,
// as `puddle login` does with the token of a password sign-in. Every call
// sends it as X-Puddle-Token. Not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "cli/http_transport.h"
#include "common/result.h"

namespace puddle::cli {

struct ApiReply {
  long status = 0;
  std::string body;         // exactly as received
  boost::json::value json;  // `body` parsed; null for an empty body
  std::string peer_fingerprint;
};

class ApiClient {
 public:
  explicit ApiClient(std::unique_ptr<HttpTransport> transport);

  // Uses this API key for later calls; the token is fetched on the first call.
  void UseApiKey(std::string api_key_id, std::string api_secret_key);
  void UseToken(std::string token);

  // Exchanges a user name and password for a token (POST /api/v1/auth/token).
  Result<std::string> TokenForPassword(const std::string& username, const std::string& password);

  // Sends an authenticated request. A reply outside 2xx becomes an Error with
  // the API's code, message, field and status; a 401 on a token obtained from
  // an API key fetches a new token and retries once, since tokens expire.
  Result<ApiReply> Get(const std::string& target);
  Result<ApiReply> Post(const std::string& target, std::optional<std::string> json_body = {});
  Result<ApiReply> Delete(const std::string& target);

  // Sends `call` without a token and without decoding errors, for probes.
  Result<HttpReply> SendUnauthenticated(const HttpCall& call);

 private:
  Result<ApiReply> Call(const std::string& method, const std::string& target,
                        std::optional<std::string> json_body);
  Result<std::string> ExchangeForToken(const boost::json::object& credentials);
  Status EnsureToken();

  std::unique_ptr<HttpTransport> transport_;
  std::string api_key_id_;
  std::string api_secret_key_;
  std::string token_;
};

// Decodes a reply outside 2xx into an Error: the API's error object when the
// body holds one, else a message naming the HTTP status.
Error DecodeApiError(const HttpReply& reply);

// Percent-encodes `text` for use as one path segment or query value.
std::string UrlEncode(std::string_view text);

}  // namespace puddle::cli
