// The HTTP/1.1 response head as HttpServer writes it: status line, the
// handler's headers, and the headers the server owns (framing, Server, Date).
// Kept apart from http_server.cc so it compiles without Beast and can be
// tested without sockets.
#pragma once

#include <cstddef>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "api/http.h"
#include "common/result.h"

namespace puddle::http {

// Framing of the body that follows the head.
struct ResponseFraming {
  unsigned version = 11;  // 10 for HTTP/1.0, 11 for HTTP/1.1
  bool keep_alive = true;
  // Content-Length to announce; nullopt for none (chunked, 204, 304).
  std::optional<size_t> content_length;
  bool chunked = false;  // Transfer-Encoding: chunked
};

// Returns internal naming the problem when `response` has a status outside
// 200-599, a header name that is not an RFC 9110 token, or a header value
// with a control character (CR and LF would let a value add headers).
Status CheckResponse(const Response& response);

// Formats the head for `response`, which must have passed CheckResponse().
// The handler's Content-Length, Transfer-Encoding, Connection, Keep-Alive,
// Server and Date headers are dropped in favour of the server's own. Header
// names are written as given (lower case from Response::SetHeader), which
// HTTP/1.1 clients treat the same as any other spelling.
std::string FormatResponseHead(const Response& response, const ResponseFraming& framing);

// Returns whether a response with `status` may carry a body (RFC 9110 6.4.1).
bool StatusAllowsBody(int status);

// Returns `now` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string FormatHttpDate(std::time_t now);

}  // namespace puddle::http
