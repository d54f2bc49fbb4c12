// HttpServer: Puddle's HTTPS/1.1 listener, which turns connections into
// http::Request values for one handler and sends back its http::Response.
//
// The implementation (Boost.Beast and Asio, C++20 coroutines) stays in
// http_server.cc so that including this header costs nothing to compile.
//
// Connections are served on `io_threads` I/O threads. Every handler call and
// every Response::stream call runs on one of `handler_threads` other threads,
// so it may block on the database or a provider.
//
// Per request, the server fills http::Request (decoded path and query,
// lower-case header names, a new request id) and answers on its own, without
// calling the handler, with the API's JSON error body when:
// - the request is not valid HTTP/1.1, its target is not a path and query, or
//   it lacks a Host header: 400 validation_failed, connection closed unless
//   only the target was wrong;
// - the header block exceeds max_header_bytes: 431, connection closed;
// - the body exceeds max_body_bytes (by Content-Length, before reading the
//   body, or while reading a chunked body): 413 payload_too_large, connection
//   closed;
// - the handler throws: 500 internal, with a log line naming the request id.
// "Expect: 100-continue" is answered with 100 once the declared length fits.
//
// With a head_handler, each request's head goes to it before the body is
// read. Its own response is sent at once; a body left unread then closes the
// connection after the response. A ProxyTarget has the request forwarded to
// a product over a fresh TCP connection: the server sends the head with
// hop-by-hop headers removed and its own framing, streams the body up (413
// past max_body_bytes), and relays the response with the product's
// Content-Length, else chunked (close-delimited to HTTP/1.0 clients). The
// product's Server and Date headers give way to the server's own. Bodies move
// one piece (64 KiB at most) at a time, the next read waiting for the last
// write, so memory stays bounded whatever their size. The client keeps its
// connection when the request body was read in full and both sides allow it.
// When the product cannot be reached, or closes or resets before its response
// head, the client gets 502; when it stays silent past proxy_idle_timeout, 504
// (both "unavailable"). A failure after the head was sent closes the
// connection, leaving the body cut short. After a 101 answer to a WebSocket
// upgrade, bytes flow unchanged both ways until either side closes,
// half-closes or fails, and the client's messages go to on_client_message.
// While a forwarded exchange or a relayed WebSocket lasts, the target's
// still_allowed runs on a handler thread every recheck_interval, and both
// connections close once it returns false.
//
// Limitations: Stop() cannot interrupt a handler or a stream() call; it waits
// for them to return. There is no limit on the number of connections and no
// HTTP/2. A streaming response notices a client that went away only between
// stream() calls, and treats a client that half-closes its side as gone.
// Forwarding opens one product connection per request (no pooling), sends
// each request with "Connection: close", drops the trailers of a chunked body
// in both directions, and answers "Expect: 100-continue" itself rather than
// asking the product. A proxied body that stalls for longer than
// proxy_idle_timeout is cut, which ends server-sent event streams whose
// product stays silent that long. Stop() closes relayed WebSockets at once,
// without a WebSocket close frame, and gives other proxied exchanges
// shutdown_timeout like any request. An exchange whose still_allowed returns
// false is cut the same way, without a WebSocket close frame or a TLS
// close_notify, and only at its next check. Checks wait for a free handler
// thread, so busy handler threads delay the cut.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "api/http.h"
#include "common/result.h"

namespace puddle {

struct HttpServerOptions {
  // IP address and port: "127.0.0.1:8443", "0.0.0.0:443", "[::1]:0" (IPv6 in
  // brackets). Port 0 binds a free port, which Start() returns. Host names are
  // not resolved.
  std::string listen = "127.0.0.1:8443";
  // PEM certificate chain (leaf first) and its PEM private key.
  std::string cert_file;
  std::string key_file;
  int io_threads = 1;
  int handler_threads = 4;
  // Largest request body accepted; larger ones get 413.
  size_t max_body_bytes = 1 << 20;
  // Largest request line plus header block accepted; larger ones get 431.
  size_t max_header_bytes = 16 << 10;
  // Time allowed for a TLS handshake, for reading one request from its first
  // byte to its last, and for writing one response or one streamed chunk.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  // Time a kept-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // Time Stop() gives requests under way before it closes their connections.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(10);
  // Time allowed for connecting to a product; past it the client gets 502.
  std::chrono::milliseconds proxy_connect_timeout = std::chrono::seconds(5);
  // Maximum silence allowed on a proxied HTTP exchange: waiting for the
  // product's response head (past it the client gets 504), and each read or
  // write of a body in either direction. A relayed WebSocket has no timeout.
  std::chrono::milliseconds proxy_idle_timeout = std::chrono::minutes(5);
  // Called on a handler thread for every request; required.
  http::Handler handler;
  // Called first, on a handler thread, with each request's head; it may
  // answer at once or have the request forwarded to a product. Optional.
  // When it returns both a response and a proxy target, the response wins.
  http::HeadHandler head_handler;
};

// Thread-safe: Start() and Stop() may be called from any thread except a
// handler thread of this server.
class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  // Calls Stop().
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the certificate and key, binds the listening socket and starts the
  // threads. Returns the bound port. Fails, naming the file or the address,
  // when the certificate or key cannot be loaded or do not match, when
  // `listen` is not IP:port, or when the address cannot be bound. A server
  // that started once cannot start again after Stop().
  Result<int> Start();

  // Stops accepting, closes idle connections (kept-alive ones, and ones still
  // in the TLS handshake), lets requests and streams under way finish within
  // shutdown_timeout (streams end at their next stream() call), closes what is
  // left, and joins all threads. Does nothing when not running.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace puddle
