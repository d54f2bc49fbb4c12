// HttpRequest and HttpResponse: Puddle's own HTTP types, free of Beast.
//
// Only api/http_server.cc and api/asio_impl.cc include Beast and Asio (they
// cost 15-25 s per translation unit to compile); handlers, the router and
// tests use these.
#pragma once

#include <chrono>
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

// Where and how the server forwards one request to a product (the access
// proxy). The server streams the request body up and the response down
// without buffering them whole, and after a 101 answer to a WebSocket upgrade
// it relays frames both ways until either side closes.
struct ProxyTarget {
  // IP literal and port of the product: "10.213.0.2:20001", "[::1]:8888".
  std::string address;
  // Request target sent to the product: path and query.
  std::string target;
  // The complete header set sent to the product, built by the caller: the
  // client's headers minus Puddle's credentials, plus the product's own
  // credential, Host and X-Forwarded-*. The server adds the framing headers
  // (Content-Length or Transfer-Encoding, and Connection/Upgrade for a
  // WebSocket upgrade) and drops any hop-by-hop header left here.
  HeaderList request_headers;
  // Response headers (lower-case names) removed before the response reaches
  // the client, such as "set-cookie" on Puddle's own origin.
  std::vector<std::string> remove_response_headers;
  // Response headers added (replacing any of the same name).
  HeaderList add_response_headers;
  // Largest request body forwarded; a larger one gets 413. 0: no limit.
  size_t max_body_bytes = 0;
  // Called, on an I/O thread, with each complete text or binary message the
  // client sends over a proxied WebSocket (unmasked, at most the first 64 KiB
  // of it). Must be quick and must not block. May be empty.
  std::function<void(std::string_view message)> on_client_message;
  // Re-checks that the client may still use the product, so that no
  // exchange outlives revoked access. From the start of forwarding until the
  // response or the relayed WebSocket ends, the server calls it every
  // `recheck_interval` on a handler thread (it may block on the database).
  // Once it returns false or throws, the server closes the client's
  // connection and the product's, without a WebSocket close frame. Empty, or
  // an interval that is not positive: never re-checked. Objects it refers to
  // must outlive HttpServer::Stop().
  std::function<bool()> still_allowed;
  std::chrono::milliseconds recheck_interval = std::chrono::seconds(30);
};

// What to do with a request, decided from its head before the body is read:
// answer at once, forward it to a product, or (neither set) read the body and
// call the Handler as usual.
struct HeadDecision {
  std::optional<Response> response;
  std::optional<ProxyTarget> proxy;
};

// Runs on a handler thread with `request.body` empty.
using HeadHandler = std::function<HeadDecision(const Request&)>;

Response JsonResponse(int status, std::string body);

}  // namespace puddle::http
