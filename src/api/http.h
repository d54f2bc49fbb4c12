// HttpRequest and HttpResponse: Puddle's own HTTP types, free of Beast.
//
// Only api/http_server.cc and api/asio_impl.cc include Beast and Asio (they
// cost 15-25 s per translation unit to compile); handlers, the router and
// tests use these.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace puddle::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: "/api/v1/systems?limit=5"
  std::string path;    // percent-decoded path: "/api/v1/systems"
  // Percent-decoded query parameters in the order received.
  std::vector<std::pair<std::string, std::string>> query;
  HeaderList headers;  // names lower-cased
  std::string body;
  std::string peer_address;  // the socket peer's IP address
  std::string request_id;    // generated per request, echoed in errors

  // Returns the first header named `name` (lower-case), or "" when absent.
  std::string_view Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  HeaderList headers;
  std::string body;
  // Pull-based body for streaming responses such as Server-Sent Events. When
  // set, the server ignores `body` and sends the headers with chunked transfer
  // encoding (HTTP/1.0 clients instead get a body that ends when the
  // connection closes). It then calls stream() on a handler thread and sends
  // each returned string as one chunk, until stream() returns nullopt, the
  // client disconnects or the server stops. An empty string sends nothing: a
  // stream without news can wait up to about a second and return "", so the
  // server can notice a disconnect or a stop between calls. Never called for
  // HEAD requests.
  std::function<std::optional<std::string>()> stream;

  // Replaces any header named `name` (lower-case) with one value.
  void SetHeader(std::string name, std::string value);
  std::string_view Header(std::string_view name) const;
};

// Runs on a handler thread, where blocking (database, provider) is allowed.
using Handler = std::function<Response(Request&)>;

Response JsonResponse(int status, std::string body);

}  // namespace puddle::http
