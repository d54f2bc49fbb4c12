// Internal to puddle_api: one client connection of HttpServer and the I/O
// steps that http_server.cc and proxy_transport.cc share. It includes Asio and
// Beast, so only those two files include it; everything else uses
// http_server.h and http.h.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "api/http.h"
#include "common/result.h"

namespace puddle::server_internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using SystemError = boost::system::error_code;
// Parses a request head, then hands out the body in pieces the caller
// provides room for, so a body is never held whole unless the caller keeps it.
using HeadParser = bhttp::request_parser<bhttp::buffer_body>;

inline constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
inline constexpr size_t kReadBytes = 16 << 10;

class SessionRegistry;

// Next step for a connection after one exchange.
enum class Next {
  kKeepAlive,       // read the next request
  kCloseTls,        // send close_notify, then close
  kLingerAndClose,  // close after discarding what the client still sends
  kClose,           // close the socket now
};

// Facts about the request that the response writer needs.
struct Exchange {
  unsigned version = 11;
  bool head = false;
  bool keep_alive = false;
  std::string request_id;
};

// One TLS connection. Its members are used only on its strand.
struct Session {
  Session(SessionRegistry* registry, tcp::socket socket, ssl::context& context)
      : registry(registry), stream(std::move(socket), context), deadline(stream.get_executor()) {
    deadline.expires_at(asio::steady_timer::time_point::max());
  }
  ~Session();

  tcp::socket& Socket() { return stream.next_layer(); }

  // Arms the deadline: WatchDeadline() closes the socket once it passes,
  // which fails the operation under way.
  void ExpireAfter(std::chrono::milliseconds timeout) { deadline.expires_after(timeout); }
  // Lifts the deadline while a handler runs: handlers may take their time.
  void Disarm() { deadline.expires_at(asio::steady_timer::time_point::max()); }

  // Closes the socket, and the product's connection of a proxied exchange,
  // and ends WatchDeadline().
  void Close() {
    SystemError ignored;
    Socket().close(ignored);
    deadline.cancel();
    if (close_upstream) close_upstream();
  }

  SessionRegistry* registry;
  ssl::stream<tcp::socket> stream;
  asio::steady_timer deadline;
  beast::flat_buffer buffer;
  std::string peer_address;
  // True while no request is under way (TLS handshake, waiting for the next
  // request) or while a WebSocket is relayed, when Stop() may close the
  // connection at once.
  bool idle = true;
  // Set while a request is forwarded to a product: closes that connection.
  std::function<void()> close_upstream;
};

// Reads what the client sent next into session.buffer.
asio::awaitable<SystemError> ReadSome(Session& session);
asio::awaitable<SystemError> WriteAll(Session& session, std::string_view data);

// Feeds `parser` from session.buffer, reading more as it needs, until the
// request head is complete; body bytes stay in the buffer.
asio::awaitable<SystemError> ReadHead(Session& session, HeadParser& parser);

// Outcome of reading a request body.
enum class BodyStatus {
  kComplete,
  kTooLarge,      // beyond the limit; the body is partly unread
  kMalformed,     // invalid chunked encoding
  kClientFailed,  // the client left, or a read timed out
  kSinkFailed,    // the sink returned false
};

// Receives each piece of a request body; returns false to stop reading.
using BodySink = std::function<asio::awaitable<bool>(std::string_view piece)>;

// Reads the body of the request whose head `parser` contains (Content-Length or
// chunked, decoded), handing it to `sink` piece by piece. Answers
// "Expect: 100-continue" first when the declared length fits. `max_bytes` 0
// means no limit. A non-zero `read_timeout` re-arms the session deadline
// before each read; zero leaves the deadline as it is.
asio::awaitable<BodyStatus> ReadBody(Session& session, HeadParser& parser, size_t max_bytes,
                                     std::chrono::milliseconds read_timeout,
                                     const BodySink& sink);

// Returns the error response for a body that failed to read (413 or 400), or
// nullopt when the client is gone and there is no one to answer.
std::optional<http::Response> BodyFailureResponse(BodyStatus status, size_t max_bytes,
                                                  std::string_view request_id);

http::Response MakeErrorResponse(ErrorCode code, std::string message,
                                 std::string_view request_id);

// Settings the forwarding takes from the server.
struct ProxySettings {
  std::chrono::milliseconds connect_timeout;
  std::chrono::milliseconds idle_timeout;
  // Time allowed for writing one of the server's own error responses.
  std::chrono::milliseconds request_timeout;
  const std::atomic<bool>* stopping;
  // Runs `work` on a handler thread and resumes the caller on its strand
  // once it returns; used for ProxyTarget::still_allowed.
  std::function<asio::awaitable<void>(std::function<void()> work)> run_on_handler_thread;
};

// Forwards the request whose head `parser` contains (its body not yet read)
// to the product `target` names, and relays the response, or the WebSocket
// after a 101, to the client. Sends 413, 502 or 504 itself when the exchange
// fails before the product's response head reached the client. Runs on the
// session's strand; defined in proxy_transport.cc.
asio::awaitable<Next> ForwardToProduct(Session& session, HeadParser& parser,
                                       const Exchange& exchange, const http::Request& request,
                                       http::ProxyTarget target, const ProxySettings& settings);

}  // namespace puddle::server_internal
