#include "cli/api_client.h"

#include <cctype>
#include <utility>

#include "common/json.h"

namespace puddle::cli {
namespace {

constexpr char kTokenHeader[] = "X-Puddle-Token";
constexpr char kTokenPath[] = "/api/v1/auth/token";

std::optional<ErrorCode> ParseErrorCode(std::string_view name) {
  for (int value = 0; value <= static_cast<int>(ErrorCode::kUnavailable); ++value) {
    auto code = static_cast<ErrorCode>(value);
    if (ErrorCodeName(code) == name) return code;
  }
  return std::nullopt;
}

std::string StringField(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) return "";
  return std::string(value->as_string());
}

ErrorCode CodeForHttpStatus(long status) {
  switch (status) {
    case 400: return ErrorCode::kValidationFailed;
    case 401: return ErrorCode::kUnauthenticated;
    case 403: return ErrorCode::kForbidden;
    case 404: return ErrorCode::kNotFound;
    case 409: return ErrorCode::kConflict;
    case 413: return ErrorCode::kPayloadTooLarge;
    case 415: return ErrorCode::kUnsupportedMediaType;
    case 429: return ErrorCode::kRateLimited;
    case 503: return ErrorCode::kUnavailable;
    default: return ErrorCode::kInternal;
  }
}

// Returns the first line of `body`, cut to a length that fits a message.
std::string BodyExcerpt(const std::string& body) {
  std::string line = body.substr(0, body.find('\n'));
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line;
}

}  // namespace

Error DecodeApiError(const HttpReply& reply) {
  Error error;
  error.code = CodeForHttpStatus(reply.status);
  if (!reply.retry_after.empty()) {
    try {
      error.retry_after_seconds = std::stoi(reply.retry_after);
    } catch (const std::exception&) {
      // An HTTP date instead of seconds leaves the delay unknown (0).
    }
  }

  boost::system::error_code parse_error;
  boost::json::value body = boost::json::parse(reply.body, parse_error);
  const boost::json::object* object = nullptr;
  if (!parse_error && body.is_object()) {
    if (const boost::json::value* inner = body.as_object().if_contains("error");
        inner != nullptr && inner->is_object()) {
      object = &inner->as_object();
    }
  }
  if (object == nullptr) {
    error.message = "server replied with HTTP " + std::to_string(reply.status);
    if (!reply.body.empty()) error.message += ": " + BodyExcerpt(reply.body);
    return error;
  }

  if (auto code = ParseErrorCode(StringField(*object, "code"))) error.code = *code;
  error.message = StringField(*object, "message");
  if (error.message.empty()) {
    error.message = "server replied with HTTP " + std::to_string(reply.status) + " (" +
                    StringField(*object, "code") + ")";
  }
  error.field = StringField(*object, "field");
  error.status = StringField(*object, "status");
  return error;
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 0x0f];
    }
  }
  return encoded;
}

ApiClient::ApiClient(std::unique_ptr<HttpTransport> transport) : transport_(std::move(transport)) {}

void ApiClient::UseApiKey(std::string api_key_id, std::string api_secret_key) {
  api_key_id_ = std::move(api_key_id);
  api_secret_key_ = std::move(api_secret_key);
  token_.clear();
}

void ApiClient::UseToken(std::string token) {
  api_key_id_.clear();
  api_secret_key_.clear();
  token_ = std::move(token);
}

Result<std::string> ApiClient::TokenForPassword(const std::string& username,
                                                const std::string& password) {
  return ExchangeForToken({{"username", username}, {"password", password}});
}

Result<std::string> ApiClient::ExchangeForToken(const boost::json::object& credentials) {
  HttpCall call;
  call.method = "POST";
  call.target = kTokenPath;
  call.json_body = json::Serialize(credentials);
  auto reply = transport_->Send(call);
  if (!reply) return tl::unexpected(reply.error());
  if (reply->status < 200 || reply->status > 299) {
    return tl::unexpected(DecodeApiError(*reply).WithContext("sign in"));
  }

  boost::system::error_code parse_error;
  boost::json::value body = boost::json::parse(reply->body, parse_error);
  std::string token;
  if (!parse_error && body.is_object()) token = StringField(body.as_object(), "token");
  if (token.empty()) {
    return MakeError(ErrorCode::kInternal,
                     "sign in: the server's reply to POST /api/v1/auth/token has no token");
  }
  return token;
}

Status ApiClient::EnsureToken() {
  if (!token_.empty()) return Ok();
  if (api_key_id_.empty()) {
    return MakeError(ErrorCode::kUnauthenticated, "no API key or token to authenticate with");
  }
  auto token = ExchangeForToken({{"apiKeyId", api_key_id_}, {"apiSecretKey", api_secret_key_}});
  if (!token) return tl::unexpected(token.error());
  token_ = std::move(*token);
  return Ok();
}

Result<ApiReply> ApiClient::Call(const std::string& method, const std::string& target,
                                 std::optional<std::string> json_body) {
  for (int attempt = 0;; ++attempt) {
    if (auto ready = EnsureToken(); !ready) return tl::unexpected(ready.error());

    HttpCall call;
    call.method = method;
    call.target = target;
    call.json_body = json_body;
    call.headers.emplace_back(kTokenHeader, token_);
    auto reply = transport_->Send(call);
    if (!reply) return tl::unexpected(reply.error());

    // A token from an API key may have expired since it was fetched.
    if (reply->status == 401 && attempt == 0 && !api_key_id_.empty()) {
      token_.clear();
      continue;
    }
    if (reply->status < 200 || reply->status > 299) {
      return tl::unexpected(DecodeApiError(*reply));
    }

    ApiReply decoded;
    decoded.status = reply->status;
    decoded.peer_fingerprint = reply->peer_fingerprint;
    if (!reply->body.empty()) {
      boost::system::error_code parse_error;
      decoded.json = boost::json::parse(reply->body, parse_error);
      if (parse_error) {
        return MakeError(ErrorCode::kInternal,
                         method + " " + target +
                             ": the server's reply is not JSON: " + BodyExcerpt(reply->body));
      }
    }
    decoded.body = std::move(reply->body);
    return decoded;
  }
}

Result<ApiReply> ApiClient::Get(const std::string& target) { return Call("GET", target, {}); }

Result<ApiReply> ApiClient::Post(const std::string& target, std::optional<std::string> json_body) {
  return Call("POST", target, std::move(json_body));
}

Result<ApiReply> ApiClient::Delete(const std::string& target) { return Call("DELETE", target, {}); }

Result<HttpReply> ApiClient::SendUnauthenticated(const HttpCall& call) {
  return transport_->Send(call);
}

}  // namespace puddle::cli
