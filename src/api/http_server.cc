// Compile time: every distinct asynchronous operation on the TLS stream
// instantiates a deep template stack. With Beast's http::async_read/write and
// beast::tcp_stream this file took 75 s of CPU to compile (GCC 12, -O2). So
// the server uses four stream operations only: read some, write a string, TLS
// handshake and TLS shutdown. It feeds Beast's parser by hand, formats
// response heads itself (http_wire.cc), and times connections out with one
// timer per session. Forwarding to products lives in proxy_transport.cc.
#include "api/http_server.h"

#include <poll.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "api/error_mapping.h"
#include "api/http_wire.h"
#include "api/request_target.h"
#include "api/server_session.h"
#include "common/ids.h"
#include "common/log.h"

namespace puddle {

using namespace server_internal;  // NOLINT: the types this file shares with proxy_transport.cc

namespace {

using RequestParser = bhttp::request_parser<bhttp::string_body>;

// Mozilla's "intermediate" TLS 1.2 suites; TLS 1.3 keeps OpenSSL's defaults.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Time to wait for the client's close_notify after sending ours.
constexpr std::chrono::seconds kTlsShutdownTimeout{2};
// After rejecting a request whose body may still be arriving, the server
// reads and discards for this long (or this many bytes) before closing. A
// close with unread data makes the kernel send a reset, which can destroy the
// error response before the client reads it.
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr size_t kMaxLingerBytes = 16 << 20;
// Time Stop() waits for connections it closed by force to wind down.
constexpr std::chrono::seconds kForcedCloseWait{1};
// Room for one piece of a request body read after the head handler ran.
constexpr size_t kBodyPieceBytes = 64 << 10;

}  // namespace

namespace server_internal {

// Live connections, so Stop() can close them and wait for them to end.
class SessionRegistry {
 public:
  void Add(const std::shared_ptr<Session>& session) {
    std::lock_guard lock(mutex_);
    sessions_[session.get()] = session;
  }

  void Remove(Session* session) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
    if (sessions_.empty()) empty_.notify_all();
  }

  std::vector<std::shared_ptr<Session>> Snapshot() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Session>> live;
    for (const auto& [key, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
    return live;
  }

  // Returns whether every session ended within `timeout`.
  bool WaitUntilEmpty(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return empty_.wait_for(lock, timeout, [this] { return sessions_.empty(); });
  }

  size_t Size() {
    std::lock_guard lock(mutex_);
    return sessions_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable empty_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;  // guarded by mutex_
};

Session::~Session() { registry->Remove(this); }

asio::awaitable<SystemError> ReadSome(Session& session) {
  auto [error, bytes] =
      co_await session.stream.async_read_some(session.buffer.prepare(kReadBytes), kNoThrow);
  session.buffer.commit(bytes);
  co_return error;
}

asio::awaitable<SystemError> WriteAll(Session& session, std::string_view data) {
  auto [error, bytes] =
      co_await asio::async_write(session.stream, asio::buffer(data.data(), data.size()), kNoThrow);
  co_return error;
}

http::Response MakeErrorResponse(ErrorCode code, std::string message,
                                 std::string_view request_id) {
  Error error;
  error.code = code;
  error.message = std::move(message);
  return http::ErrorResponse(error, request_id);
}

}  // namespace server_internal

namespace {

asio::awaitable<void> WatchDeadline(std::shared_ptr<Session> session) {
  while (session->Socket().is_open()) {
    co_await session->deadline.async_wait(kNoThrow);
    if (session->deadline.expiry() <= asio::steady_timer::clock_type::now()) {
      SystemError ignored;
      session->Socket().close(ignored);
    }
  }
}

std::string PeerAddress(const tcp::endpoint& endpoint) {
  asio::ip::address address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

Result<tcp::endpoint> ParseListenAddress(const std::string& listen) {
  auto invalid = [&](std::string_view why) {
    return MakeError(ErrorCode::kValidationFailed,
                     "listen address '" + listen + "' " + std::string(why) +
                         "; expected IP:port such as 127.0.0.1:8443 or [::1]:8443",
                     "listen");
  };

  std::string host;
  std::string_view port;
  if (listen.starts_with('[')) {
    size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return invalid("has no port after the bracketed IPv6 address");
    }
    host = listen.substr(1, close - 1);
    port = std::string_view(listen).substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) return invalid("has no port");
    host = listen.substr(0, colon);
    port = std::string_view(listen).substr(colon + 1);
    if (host.find(':') != std::string::npos) return invalid("needs brackets around an IPv6 address");
  }

  uint16_t port_number = 0;
  auto [end, parse_error] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || parse_error != std::errc() || end != port.data() + port.size()) {
    return invalid("has an invalid port");
  }
  SystemError address_error;
  asio::ip::address address = asio::ip::make_address(host, address_error);
  if (address_error) return invalid("does not start with an IP address");
  return tcp::endpoint(address, port_number);
}

std::string ToLower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

// Frames `data` as one chunk of a chunked body (RFC 9112 section 7.1).
std::string ChunkFrame(std::string_view data) {
  char size[20];
  auto [end, error] = std::to_chars(size, size + sizeof(size), data.size(), 16);
  std::string frame(size, end);
  frame += "\r\n";
  frame += data;
  frame += "\r\n";
  return frame;
}

// Reports whether the client closed or reset its side. POLLRDHUP also shows a
// FIN that waits behind unread bytes, such as a TLS close_notify alert.
bool PeerHungUp(Session& session) {
  if (!session.Socket().is_open()) return true;
  pollfd descriptor{session.Socket().native_handle(), POLLRDHUP, 0};
  if (::poll(&descriptor, 1, 0) <= 0) return false;
  return (descriptor.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

// Builds the handler's view of a request head, with an empty body.
http::Request MakeRequest(const bhttp::request_header<>& header, const std::string& peer_address) {
  http::Request request;
  request.method = std::string(header.method_string());
  request.target = std::string(header.target());
  request.peer_address = peer_address;
  request.request_id = NewId();
  for (const auto& field : header) {
    request.headers.emplace_back(ToLower(field.name_string()), std::string(field.value()));
  }
  return request;
}

// Checks what Beast's parser leaves to the server, and decodes the target
// into request.path and request.query. Returns the 400 response to send for a
// bad request; `connection_usable` then says whether the connection may serve
// another request afterwards (only the target was wrong).
std::optional<http::Response> CheckHead(http::Request& request, unsigned version,
                                        bool& connection_usable) {
  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one before.
  size_t host_count = 0;
  for (const auto& [name, value] : request.headers) {
    if (name == "host") ++host_count;
  }
  if (host_count > 1 || (host_count == 0 && version >= 11)) {
    connection_usable = false;
    return MakeErrorResponse(ErrorCode::kValidationFailed, "request needs exactly one Host header",
                             request.request_id);
  }

  auto target = http::ParseRequestTarget(request.target);
  if (!target) {
    connection_usable = true;
    return http::ErrorResponse(target.error(), request.request_id);
  }
  request.path = std::move(target->path);
  request.query = std::move(target->query);
  return std::nullopt;
}

void LogTaskFailure(std::string_view task, std::exception_ptr failure) {
  if (!failure) return;
  std::string what = "exception of unknown type";
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  log::Error("HTTPS server task failed", {{"task", std::string(task)}, {"error", what}});
}

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options)
      : options_(std::move(options)),
        io_context_(std::max(1, options_.io_threads)),
        acceptor_(asio::make_strand(io_context_)) {}

  Result<int> Start();
  void Stop();

 private:
  Status ConfigureTls();
  Result<int> Listen(const tcp::endpoint& endpoint);
  asio::awaitable<void> AcceptLoop();
  void StartSession(tcp::socket socket);
  void CloseSessions(bool idle_only);

  asio::awaitable<void> RunSession(std::shared_ptr<Session> session);
  asio::awaitable<Next> ServeRequest(Session& session, bool first);
  asio::awaitable<Next> ServeRequestInTwoSteps(Session& session);
  asio::awaitable<Next> RespondToHead(Session& session, const HeadParser& parser,
                                      Exchange exchange, http::Response response);
  asio::awaitable<Next> HandleAndRespond(Session& session, const Exchange& exchange,
                                         http::Request& request);
  asio::awaitable<SystemError> ReadRequest(Session& session, RequestParser& parser);
  asio::awaitable<Next> RejectUnreadable(Session& session, const SystemError& error);
  asio::awaitable<Next> Reject(Session& session, http::Response response);
  asio::awaitable<Next> Respond(Session& session, const Exchange& exchange,
                                http::Response response);
  asio::awaitable<Next> RespondWithStream(Session& session, const Exchange& exchange,
                                          http::Response response);
  asio::awaitable<void> ShutdownTls(Session& session);
  asio::awaitable<void> LingerAndClose(Session& session);
  asio::awaitable<void> RunOnHandlerThread(std::function<void()> work);

  http::Response CallHandler(http::Request& request);
  http::HeadDecision CallHeadHandler(const http::Request& request);
  Exchange MakeExchange(const bhttp::request_header<>& header, bool keep_alive) const;
  std::uint32_t HeaderLimit() const;
  std::optional<std::string> PullChunk(http::Response& response, const std::string& request_id);

  const HttpServerOptions options_;

  std::mutex lifecycle_mutex_;  // serialises Start() and Stop()
  bool started_ = false;        // guarded by lifecycle_mutex_
  bool running_ = false;        // guarded by lifecycle_mutex_
  std::atomic<bool> stopping_{false};

  // Declared before io_context_, whose destruction destroys pending sessions,
  // which refer to both.
  SessionRegistry sessions_;
  ssl::context ssl_context_{ssl::context::tls_server};

  asio::io_context io_context_;
  tcp::acceptor acceptor_;  // used on its own strand
  std::optional<asio::thread_pool> handler_pool_;
  std::vector<std::thread> io_threads_;
};

Result<int> HttpServer::Impl::Start() {
  std::lock_guard lock(lifecycle_mutex_);
  if (started_) return InternalError("HTTPS server on " + options_.listen + " was already started");
  if (!options_.handler) return InternalError("HTTPS server on " + options_.listen + " has no handler");

  auto endpoint = ParseListenAddress(options_.listen);
  if (!endpoint) return tl::unexpected(endpoint.error());
  if (Status tls = ConfigureTls(); !tls) return tl::unexpected(tls.error());
  auto port = Listen(*endpoint);
  if (!port) return port;

  // Threads start only once nothing can fail, so a failed Start() leaves none.
  handler_pool_.emplace(static_cast<size_t>(std::max(1, options_.handler_threads)));
  asio::co_spawn(acceptor_.get_executor(), AcceptLoop(),
                 [](std::exception_ptr failure) { LogTaskFailure("accept", failure); });
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    io_threads_.emplace_back([this] { io_context_.run(); });
  }
  started_ = true;
  running_ = true;
  log::Info("HTTPS server listening",
            {{"address", options_.listen}, {"port", std::to_string(*port)}});
  return port;
}

Status HttpServer::Impl::ConfigureTls() {
  SSL_CTX* context = ssl_context_.native_handle();
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_options(context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(context, kTls12Ciphers);

  SystemError error;
  ssl_context_.use_certificate_chain_file(options_.cert_file, error);
  if (error) {
    return InternalError("load TLS certificate '" + options_.cert_file + "': " + error.message());
  }
  ssl_context_.use_private_key_file(options_.key_file, ssl::context::pem, error);
  bool mismatch = error.category() == asio::error::get_ssl_category() &&
                  ERR_GET_REASON(static_cast<unsigned long>(error.value())) ==
                      X509_R_KEY_VALUES_MISMATCH;
  if (error && !mismatch) {
    return InternalError("load TLS private key '" + options_.key_file + "': " + error.message());
  }
  if (mismatch || SSL_CTX_check_private_key(context) != 1) {
    return InternalError("TLS private key '" + options_.key_file + "' does not match certificate '" +
                         options_.cert_file + "'");
  }
  return Ok();
}

Result<int> HttpServer::Impl::Listen(const tcp::endpoint& endpoint) {
  SystemError error;
  auto failed = [&](std::string_view step) {
    SystemError ignored;
    acceptor_.close(ignored);
    Error failure;
    failure.code = ErrorCode::kUnavailable;
    failure.message = std::string(step) + " " + options_.listen + ": " + error.message();
    return tl::unexpected<Error>(std::move(failure));
  };

  acceptor_.open(endpoint.protocol(), error);
  if (error) return failed("open a socket for");
  acceptor_.set_option(asio::socket_base::reuse_address(true), error);
  if (error) return failed("set SO_REUSEADDR for");
  acceptor_.bind(endpoint, error);
  if (error) return failed("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) return failed("listen on");
  tcp::endpoint bound = acceptor_.local_endpoint(error);
  if (error) return failed("read the bound port of");
  return static_cast<int>(bound.port());
}

void HttpServer::Impl::Stop() {
  std::lock_guard lock(lifecycle_mutex_);
  if (!running_) return;
  running_ = false;

  // Stop accepting and close connections that have no request under way.
  stopping_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    SystemError ignored;
    acceptor_.close(ignored);
  });
  CloseSessions(/*idle_only=*/true);

  // Requests under way get responses with "Connection: close", which end
  // their sessions.
  if (!sessions_.WaitUntilEmpty(options_.shutdown_timeout)) {
    log::Warning("closing connections whose requests outlived the shutdown timeout",
                 {{"address", options_.listen}, {"count", std::to_string(sessions_.Size())}});
    CloseSessions(/*idle_only=*/false);
    sessions_.WaitUntilEmpty(kForcedCloseWait);
  }

  // Sessions still waiting for a handler are destroyed with io_context_; the
  // pool's join waits for their handlers to return.
  io_context_.stop();
  for (std::thread& thread : io_threads_) thread.join();
  io_threads_.clear();
  handler_pool_->join();
  log::Info("HTTPS server stopped", {{"address", options_.listen}});
}

void HttpServer::Impl::CloseSessions(bool idle_only) {
  for (std::shared_ptr<Session>& session : sessions_.Snapshot()) {
    asio::post(session->stream.get_executor(), [session, idle_only] {
      if (!idle_only || session->idle) session->Close();
    });
  }
}

asio::awaitable<void> HttpServer::Impl::AcceptLoop() {
  for (;;) {
    auto [error, socket] = co_await acceptor_.async_accept(asio::make_strand(io_context_), kNoThrow);
    if (!acceptor_.is_open() || stopping_) co_return;
    if (error) {
      // Typically EMFILE: pause instead of spinning until descriptors free up.
      log::Warning("HTTPS server failed to accept a connection",
                   {{"address", options_.listen}, {"error", error.message()}});
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    StartSession(std::move(socket));
  }
}

void HttpServer::Impl::StartSession(tcp::socket socket) {
  SystemError error;
  tcp::endpoint peer = socket.remote_endpoint(error);
  if (error) return;  // the client is already gone
  socket.set_option(tcp::no_delay(true), error);

  auto session = std::make_shared<Session>(&sessions_, std::move(socket), ssl_context_);
  session->peer_address = PeerAddress(peer);
  sessions_.Add(session);
  auto executor = session->stream.get_executor();
  asio::co_spawn(executor, WatchDeadline(session),
                 [](std::exception_ptr failure) { LogTaskFailure("deadline", failure); });
  asio::co_spawn(executor, RunSession(std::move(session)),
                 [](std::exception_ptr failure) { LogTaskFailure("connection", failure); });
}

asio::awaitable<void> HttpServer::Impl::RunSession(std::shared_ptr<Session> session) {
  // Stop() sets stopping_ before it closes idle sessions, so a session added
  // after that pass finds the flag set here.
  if (stopping_) {
    session->Close();
    co_return;
  }
  session->ExpireAfter(options_.request_timeout);
  auto [handshake_error] =
      co_await session->stream.async_handshake(ssl::stream_base::server, kNoThrow);
  if (handshake_error) {
    // Port scanners and plain-HTTP clients end here, with nothing to send.
    log::Debug("TLS handshake failed",
               {{"address", session->peer_address}, {"error", handshake_error.message()}});
    session->Close();
    co_return;
  }

  Next next = Next::kKeepAlive;
  for (bool first = true; next == Next::kKeepAlive; first = false) {
    next = co_await ServeRequest(*session, first);
  }
  if (next == Next::kCloseTls) co_await ShutdownTls(*session);
  if (next == Next::kLingerAndClose) co_await LingerAndClose(*session);
  session->Close();
}

asio::awaitable<Next> HttpServer::Impl::ServeRequest(Session& session, bool first) {
  // Wait for the request's first byte under the idle timeout; Stop() closes
  // the connection meanwhile when `idle` is set.
  if (session.buffer.size() == 0) {
    if (stopping_) co_return Next::kClose;
    session.idle = true;
    session.ExpireAfter(first ? options_.request_timeout : options_.idle_timeout);
    if (SystemError error = co_await ReadSome(session)) co_return Next::kClose;
  }
  session.idle = false;

  // Read the whole request within one request timeout.
  session.ExpireAfter(options_.request_timeout);
  if (options_.head_handler) co_return co_await ServeRequestInTwoSteps(session);
  RequestParser parser;
  parser.header_limit(HeaderLimit());
  parser.body_limit(options_.max_body_bytes);
  if (SystemError error = co_await ReadRequest(session, parser)) {
    co_return co_await RejectUnreadable(session, error);
  }

  // Build the handler's view of the request.
  auto message = parser.release();
  Exchange exchange = MakeExchange(message, message.keep_alive());
  http::Request request = MakeRequest(message, session.peer_address);
  exchange.request_id = request.request_id;
  request.body = std::move(message.body());
  bool connection_usable = true;
  if (auto rejection = CheckHead(request, exchange.version, connection_usable)) {
    if (connection_usable) co_return co_await Respond(session, exchange, std::move(*rejection));
    co_return co_await Reject(session, std::move(*rejection));
  }
  co_return co_await HandleAndRespond(session, exchange, request);
}

// Serves a request when a head handler is set: the head handler sees the
// head first, then the body is read for the handler, forwarded to a product,
// or left unread behind the head handler's own response.
asio::awaitable<Next> HttpServer::Impl::ServeRequestInTwoSteps(Session& session) {
  HeadParser parser;
  parser.header_limit(HeaderLimit());
  // The limit depends on the head handler's decision, so each path below
  // checks its own.
  parser.body_limit(boost::none);
  if (SystemError error = co_await ReadHead(session, parser)) {
    co_return co_await RejectUnreadable(session, error);
  }

  const auto& header = parser.get();
  Exchange exchange = MakeExchange(header, parser.keep_alive());
  http::Request request = MakeRequest(header, session.peer_address);
  exchange.request_id = request.request_id;
  bool connection_usable = true;
  if (auto rejection = CheckHead(request, exchange.version, connection_usable)) {
    if (connection_usable && parser.is_done()) {
      co_return co_await Respond(session, exchange, std::move(*rejection));
    }
    co_return co_await Reject(session, std::move(*rejection));
  }

  http::HeadDecision decision;
  session.Disarm();
  std::function<void()> call = [&] { decision = CallHeadHandler(request); };
  co_await RunOnHandlerThread(std::move(call));
  session.ExpireAfter(options_.request_timeout);

  if (decision.response) {
    co_return co_await RespondToHead(session, parser, exchange, std::move(*decision.response));
  }
  if (decision.proxy) {
    ProxySettings settings{options_.proxy_connect_timeout, options_.proxy_idle_timeout,
                           options_.request_timeout, &stopping_,
                           [this](std::function<void()> work) {
                             return RunOnHandlerThread(std::move(work));
                           }};
    co_return co_await ForwardToProduct(session, parser, exchange, request,
                                        std::move(*decision.proxy), settings);
  }

  // Neither: read the body within the server's limit and call the handler.
  BodySink append = [&request](std::string_view piece) -> asio::awaitable<bool> {
    request.body.append(piece);
    co_return true;
  };
  BodyStatus status = co_await ReadBody(session, parser, options_.max_body_bytes,
                                        std::chrono::milliseconds(0), append);
  if (status != BodyStatus::kComplete) {
    std::optional<http::Response> rejection =
        BodyFailureResponse(status, options_.max_body_bytes, request.request_id);
    if (!rejection) co_return Next::kClose;
    co_return co_await Reject(session, std::move(*rejection));
  }
  co_return co_await HandleAndRespond(session, exchange, request);
}

// Sends the head handler's own response. A body the client may still be
// sending stays unread, so the connection then closes after the response.
asio::awaitable<Next> HttpServer::Impl::RespondToHead(Session& session, const HeadParser& parser,
                                                      Exchange exchange,
                                                      http::Response response) {
  bool body_unread = !parser.is_done();
  if (body_unread) exchange.keep_alive = false;
  Next next = Next::kClose;
  if (response.stream && !exchange.head) {
    next = co_await RespondWithStream(session, exchange, std::move(response));
  } else {
    next = co_await Respond(session, exchange, std::move(response));
  }
  if (body_unread && next == Next::kCloseTls) next = Next::kLingerAndClose;
  co_return next;
}

asio::awaitable<Next> HttpServer::Impl::HandleAndRespond(Session& session,
                                                         const Exchange& exchange,
                                                         http::Request& request) {
  http::Response response;
  session.Disarm();
  std::function<void()> call = [&] { response = CallHandler(request); };
  co_await RunOnHandlerThread(std::move(call));
  if (response.stream && !exchange.head) {
    co_return co_await RespondWithStream(session, exchange, std::move(response));
  }
  co_return co_await Respond(session, exchange, std::move(response));
}

Exchange HttpServer::Impl::MakeExchange(const bhttp::request_header<>& header,
                                        bool keep_alive) const {
  Exchange exchange;
  exchange.version = header.version();
  exchange.head = header.method() == bhttp::verb::head;
  exchange.keep_alive = keep_alive && !stopping_;
  return exchange;
}

std::uint32_t HttpServer::Impl::HeaderLimit() const {
  return static_cast<std::uint32_t>(
      std::min<size_t>(options_.max_header_bytes, std::numeric_limits<std::uint32_t>::max()));
}

// Feeds Beast's parser from the session buffer, reading more as it needs,
// until the request is complete. Sends "100 Continue" to a client that sent
// "Expect: 100-continue", once the header is read and the declared length fits.
asio::awaitable<SystemError> HttpServer::Impl::ReadRequest(Session& session,
                                                          RequestParser& parser) {
  bool header_done = false;
  for (;;) {
    SystemError error;
    if (session.buffer.size() > 0) {
      size_t used = parser.put(session.buffer.data(), error);
      session.buffer.consume(used);
    }
    if (error && error != bhttp::error::need_more) co_return error;
    if (parser.is_done()) co_return SystemError();

    if (parser.is_header_done() && !header_done) {
      header_done = true;
      // From here on, take the body as it arrives rather than in whole pieces.
      parser.eager(true);
      const auto& header = parser.get();
      if (header.version() >= 11 && beast::iequals(header[bhttp::field::expect], "100-continue")) {
        const std::string proceed = "HTTP/1.1 100 Continue\r\n\r\n";
        if (SystemError write_error = co_await WriteAll(session, proceed)) co_return write_error;
      }
      continue;  // the buffer may already hold body bytes
    }

    if (SystemError read_error = co_await ReadSome(session)) co_return read_error;
  }
}

namespace server_internal {

asio::awaitable<SystemError> ReadHead(Session& session, HeadParser& parser) {
  for (;;) {
    SystemError error;
    if (session.buffer.size() > 0) {
      size_t used = parser.put(session.buffer.data(), error);
      session.buffer.consume(used);
    }
    if (error && error != bhttp::error::need_more) co_return error;
    if (parser.is_header_done()) co_return SystemError();
    if (SystemError read_error = co_await ReadSome(session)) co_return read_error;
  }
}

asio::awaitable<BodyStatus> ReadBody(Session& session, HeadParser& parser, size_t max_bytes,
                                     std::chrono::milliseconds read_timeout,
                                     const BodySink& sink) {
  boost::optional<std::uint64_t> declared = parser.content_length();
  if (max_bytes > 0 && declared && *declared > max_bytes) co_return BodyStatus::kTooLarge;
  if (parser.is_done()) co_return BodyStatus::kComplete;

  const auto& header = parser.get();
  if (header.version() >= 11 && beast::iequals(header[bhttp::field::expect], "100-continue")) {
    const std::string proceed = "HTTP/1.1 100 Continue\r\n\r\n";
    if (SystemError error = co_await WriteAll(session, proceed)) co_return BodyStatus::kClientFailed;
  }

  // Take the body as it arrives, one piece of at most kBodyPieceBytes at a time.
  parser.eager(true);
  std::vector<char> piece(kBodyPieceBytes);
  std::uint64_t total = 0;
  for (;;) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    SystemError error;
    size_t used = 0;
    if (session.buffer.size() > 0) {
      used = parser.put(session.buffer.data(), error);
      session.buffer.consume(used);
    }
    if (error == bhttp::error::need_buffer) error = {};
    if (error && error != bhttp::error::need_more) co_return BodyStatus::kMalformed;

    size_t produced = piece.size() - parser.get().body().size;
    if (produced > 0) {
      total += produced;
      if (max_bytes > 0 && total > max_bytes) co_return BodyStatus::kTooLarge;
      if (!co_await sink(std::string_view(piece.data(), produced))) co_return BodyStatus::kSinkFailed;
    }
    if (parser.is_done()) co_return BodyStatus::kComplete;

    // Framing without body bytes (a chunk header) may remain to parse.
    if (produced > 0 || (used > 0 && session.buffer.size() > 0)) continue;
    if (read_timeout.count() > 0) session.ExpireAfter(read_timeout);
    if (SystemError read_error = co_await ReadSome(session)) co_return BodyStatus::kClientFailed;
  }
}

std::optional<http::Response> BodyFailureResponse(BodyStatus status, size_t max_bytes,
                                                  std::string_view request_id) {
  switch (status) {
    case BodyStatus::kTooLarge:
      return MakeErrorResponse(ErrorCode::kPayloadTooLarge,
                               "request body exceeds " + std::to_string(max_bytes) + " bytes",
                               request_id);
    case BodyStatus::kMalformed:
      return MakeErrorResponse(ErrorCode::kValidationFailed,
                               "malformed HTTP request: invalid chunked body", request_id);
    case BodyStatus::kComplete:
    case BodyStatus::kClientFailed:
    case BodyStatus::kSinkFailed:
      break;
  }
  return std::nullopt;
}

}  // namespace server_internal

// Sends an error response for a request that could not be read in full,
// unless the client is gone, and returns how to close the connection.
asio::awaitable<Next> HttpServer::Impl::RejectUnreadable(Session& session,
                                                         const SystemError& error) {
  std::string request_id = NewId();
  if (error == bhttp::error::body_limit) {
    http::Response response = MakeErrorResponse(
        ErrorCode::kPayloadTooLarge,
        "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes", request_id);
    co_return co_await Reject(session, std::move(response));
  }
  if (error == bhttp::error::header_limit) {
    http::Response response = MakeErrorResponse(
        ErrorCode::kValidationFailed,
        "request header block exceeds " + std::to_string(options_.max_header_bytes) + " bytes",
        request_id);
    response.status = 431;
    co_return co_await Reject(session, std::move(response));
  }
  // Socket errors mean the client left or the deadline closed the socket,
  // so there is no one to send a response to.
  if (error.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
    co_return Next::kClose;
  }
  http::Response response = MakeErrorResponse(
      ErrorCode::kValidationFailed, "malformed HTTP request: " + error.message(), request_id);
  co_return co_await Reject(session, std::move(response));
}

// Sends `response` with "Connection: close", then lingers, because the
// request may be only partly read.
asio::awaitable<Next> HttpServer::Impl::Reject(Session& session, http::Response response) {
  Exchange exchange;
  exchange.keep_alive = false;
  Next written = co_await Respond(session, exchange, std::move(response));
  co_return written == Next::kClose ? Next::kClose : Next::kLingerAndClose;
}

http::Response HttpServer::Impl::CallHandler(http::Request& request) {
  std::string error;
  try {
    http::Response response = options_.handler(request);
    Status valid = http::CheckResponse(response);
    if (valid) return response;
    log::Error("request handler returned an invalid response",
               {{"request_id", request.request_id},
                {"path", request.path},
                {"error", valid.error().message}});
    return MakeErrorResponse(ErrorCode::kInternal, "", request.request_id);
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "exception of unknown type";
  }
  log::Error("request handler threw an exception",
             {{"request_id", request.request_id}, {"path", request.path}, {"error", error}});
  return MakeErrorResponse(ErrorCode::kInternal, "", request.request_id);
}

http::HeadDecision HttpServer::Impl::CallHeadHandler(const http::Request& request) {
  std::string error;
  try {
    http::HeadDecision decision = options_.head_handler(request);
    if (!decision.response) return decision;
    Status valid = http::CheckResponse(*decision.response);
    if (valid) return decision;
    log::Error("head handler returned an invalid response",
               {{"request_id", request.request_id},
                {"path", request.path},
                {"error", valid.error().message}});
  } catch (const std::exception& e) {
    error = e.what();
    log::Error("head handler threw an exception",
               {{"request_id", request.request_id}, {"path", request.path}, {"error", error}});
  } catch (...) {
    log::Error("head handler threw an exception",
               {{"request_id", request.request_id},
                {"path", request.path},
                {"error", "exception of unknown type"}});
  }
  http::HeadDecision failure;
  failure.response = MakeErrorResponse(ErrorCode::kInternal, "", request.request_id);
  return failure;
}

std::optional<std::string> HttpServer::Impl::PullChunk(http::Response& response,
                                                       const std::string& request_id) {
  std::string error;
  try {
    return response.stream();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "exception of unknown type";
  }
  log::Error("response stream threw an exception", {{"request_id", request_id}, {"error", error}});
  return std::nullopt;
}

asio::awaitable<Next> HttpServer::Impl::Respond(Session& session, const Exchange& exchange,
                                                http::Response response) {
  http::ResponseFraming framing;
  framing.version = exchange.version;
  framing.keep_alive = exchange.keep_alive && !stopping_;
  bool body_allowed = http::StatusAllowsBody(response.status);
  if (response.stream) {
    // Only HEAD gets here with a stream: announce the framing a GET would get.
    framing.chunked = exchange.version >= 11;
  } else if (body_allowed) {
    framing.content_length = response.body.size();
  }

  // HEAD announces the length a GET would send, without the body.
  std::string wire = http::FormatResponseHead(response, framing);
  if (body_allowed && !exchange.head) wire += response.body;
  session.ExpireAfter(options_.request_timeout);
  if (SystemError error = co_await WriteAll(session, wire)) co_return Next::kClose;
  co_return framing.keep_alive ? Next::kKeepAlive : Next::kCloseTls;
}

asio::awaitable<Next> HttpServer::Impl::RespondWithStream(Session& session,
                                                          const Exchange& exchange,
                                                          http::Response response) {
  // HTTP/1.0 has no chunked encoding: the body then ends when the connection does.
  http::ResponseFraming framing;
  framing.version = exchange.version;
  framing.chunked = exchange.version >= 11;
  framing.keep_alive = exchange.keep_alive && framing.chunked && !stopping_;
  session.ExpireAfter(options_.request_timeout);
  const std::string head = http::FormatResponseHead(response, framing);
  if (SystemError error = co_await WriteAll(session, head)) co_return Next::kClose;

  // Pull chunks until the stream ends, the server stops or the client leaves.
  bool ended = false;
  while (!stopping_) {
    if (PeerHungUp(session)) co_return Next::kClose;
    std::optional<std::string> chunk;
    session.Disarm();
    std::function<void()> pull = [&] { chunk = PullChunk(response, exchange.request_id); };
    co_await RunOnHandlerThread(std::move(pull));
    if (!chunk) {
      ended = true;
      break;
    }
    if (chunk->empty()) continue;  // an empty chunk would end the body
    session.ExpireAfter(options_.request_timeout);
    // A named string, not a conditional expression: GCC 12 destroys a
    // temporary from "a ? b : c" twice when it sits inside a co_await.
    if (framing.chunked) *chunk = ChunkFrame(*chunk);
    if (SystemError error = co_await WriteAll(session, *chunk)) co_return Next::kClose;
  }

  if (framing.chunked) {
    session.ExpireAfter(options_.request_timeout);
    const std::string last_chunk = "0\r\n\r\n";
    if (SystemError error = co_await WriteAll(session, last_chunk)) co_return Next::kClose;
  }
  co_return ended && framing.keep_alive && !stopping_ ? Next::kKeepAlive : Next::kCloseTls;
}

asio::awaitable<void> HttpServer::Impl::ShutdownTls(Session& session) {
  session.ExpireAfter(kTlsShutdownTimeout);
  co_await session.stream.async_shutdown(kNoThrow);
}

asio::awaitable<void> HttpServer::Impl::LingerAndClose(Session& session) {
  SystemError ignored;
  session.Socket().shutdown(tcp::socket::shutdown_send, ignored);
  session.ExpireAfter(kLingerTimeout);
  std::vector<char> discard(kReadBytes);
  for (size_t total = 0; total < kMaxLingerBytes;) {
    auto [error, bytes] = co_await session.Socket().async_read_some(asio::buffer(discard), kNoThrow);
    if (error) break;
    total += bytes;
  }
}

// Runs `work` on a handler thread; the coroutine resumes on the session's
// strand once it returns.
asio::awaitable<void> HttpServer::Impl::RunOnHandlerThread(std::function<void()> work) {
  co_await asio::co_spawn(
      *handler_pool_,
      [&work]() -> asio::awaitable<void> {
        work();
        co_return;
      },
      asio::use_awaitable);
}

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

Result<int> HttpServer::Start() { return impl_->Start(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace puddle
