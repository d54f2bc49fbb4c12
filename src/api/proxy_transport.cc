// Forwarding of one request to a product for HttpServer's head handler, over
// a fresh TCP connection per request. The request body streams up and the
// response streams down one piece at a time, and each write finishes before
// the next read (backpressure). A WebSocket upgrade the product accepts
// becomes a byte relay in both directions.
//
// Timeouts: connecting gets ProxySettings::connect_timeout (502 past it);
// the product's response head, and each read or write of a body in either
// direction, get idle_timeout (504 when the head is late; the connection
// closes when a body stalls). A relayed WebSocket has none.
//
// Revocation: with ProxyTarget::still_allowed set, an access check watches
// the exchange from its start to its end and closes both connections once
// the callback says the client lost access.
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>

#include "api/http_wire.h"
#include "api/proxy_wire.h"
#include "api/server_session.h"
#include "common/log.h"

namespace puddle::server_internal {
namespace {

using ResponseParser = bhttp::response_parser<bhttp::buffer_body>;

// Room for one piece of a response body on its way to the client.
constexpr size_t kPieceBytes = 64 << 10;
// Products such as Jupyter set several cookies; 64 KiB leaves room for them.
constexpr std::uint32_t kMaxResponseHeadBytes = 64 << 10;
// Part of each client WebSocket message passed to on_client_message.
constexpr size_t kMaxReportedMessageBytes = 64 << 10;

// The product's side of one proxied exchange. Used only on the session's
// strand.
struct Upstream {
  explicit Upstream(const tcp::socket::executor_type& executor)
      : socket(executor), deadline(executor) {
    deadline.expires_at(asio::steady_timer::time_point::max());
  }

  void ExpireAfter(std::chrono::milliseconds timeout) { deadline.expires_after(timeout); }
  void Disarm() { deadline.expires_at(asio::steady_timer::time_point::max()); }
  void Close() {
    SystemError ignored;
    socket.close(ignored);
    deadline.cancel();
  }

  tcp::socket socket;
  asio::steady_timer deadline;
  beast::flat_buffer buffer;
  bool timed_out = false;  // the deadline passed and closed the socket
};

// Closes the product's socket once its deadline passes, like the session's
// WatchDeadline() does for the client.
asio::awaitable<void> WatchUpstreamDeadline(std::shared_ptr<Upstream> upstream) {
  while (upstream->socket.is_open()) {
    co_await upstream->deadline.async_wait(kNoThrow);
    if (upstream->deadline.expiry() <= asio::steady_timer::clock_type::now()) {
      upstream->timed_out = true;
      SystemError ignored;
      upstream->socket.close(ignored);
    }
  }
}

void LogFailure(std::string_view task, std::exception_ptr failure) {
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

// Parses "10.0.0.2:8888" or "[::1]:8888"; host names are not resolved.
std::optional<tcp::endpoint> ParseProductAddress(const std::string& address) {
  std::string host;
  std::string port;
  if (address.starts_with('[')) {
    size_t close = address.find(']');
    if (close == std::string::npos || address.substr(close + 1, 1) != ":") return std::nullopt;
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string::npos) return std::nullopt;
  }

  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  unsigned long number = std::stoul(port);
  if (number == 0 || number > 65535) return std::nullopt;
  SystemError error;
  asio::ip::address ip = asio::ip::make_address(host, error);
  if (error) return std::nullopt;
  return tcp::endpoint(ip, static_cast<unsigned short>(number));
}

// Copies a product's bytes to the client until either side fails or closes,
// then closes both. Runs beside Forwarder::RelayClientToProduct().
asio::awaitable<void> RelayProductToClient(Session& session, std::shared_ptr<Upstream> upstream) {
  for (;;) {
    if (upstream->buffer.size() > 0) {
      auto data = upstream->buffer.data();
      std::string_view bytes(static_cast<const char*>(data.data()), data.size());
      if (SystemError error = co_await WriteAll(session, bytes)) break;
      upstream->buffer.consume(bytes.size());
    }
    auto [error, bytes] =
        co_await upstream->socket.async_read_some(upstream->buffer.prepare(kReadBytes), kNoThrow);
    upstream->buffer.commit(bytes);
    if (error && upstream->buffer.size() == 0) break;
  }
  session.Close();  // also closes the product's side
}

// Shared by a Forwarder and its access check. Used only on the session's strand.
struct AccessCheck {
  explicit AccessCheck(const tcp::socket::executor_type& executor) : timer(executor) {}
  asio::steady_timer timer;
  // Set when the exchange ended: the check must no longer touch the session,
  // which may be serving another request or be gone.
  bool stopped = false;
};

// Calls `still_allowed` on a handler thread every `interval` until the
// exchange ends, and closes the session, and with it the product's
// connection, once the callback returns false or throws.
asio::awaitable<void> CheckAccess(Session& session, std::shared_ptr<AccessCheck> check,
                                  std::function<bool()> still_allowed,
                                  std::chrono::milliseconds interval,
                                  std::function<asio::awaitable<void>(std::function<void()>)> run,
                                  std::string request_id) {
  while (!check->stopped) {
    check->timer.expires_after(interval);
    co_await check->timer.async_wait(kNoThrow);
    if (check->stopped) co_return;

    bool allowed = false;
    std::function<void()> call = [&allowed, &still_allowed, &request_id] {
      try {
        allowed = still_allowed();
      } catch (const std::exception& e) {
        log::Error("proxy access check threw an exception; closing the connection",
                   {{"request_id", request_id}, {"error", e.what()}});
      } catch (...) {
        log::Error("proxy access check threw an exception of unknown type; closing the connection",
                   {{"request_id", request_id}});
      }
    };
    co_await run(std::move(call));
    if (check->stopped) co_return;
    if (!allowed) {
      log::Info("closing a proxied connection: its client lost access to the system",
                {{"request_id", request_id}});
      session.Close();
      co_return;
    }
  }
}

// Lets a coroutine wait for one it spawned to finish.
struct Completion {
  explicit Completion(const tcp::socket::executor_type& executor) : wakeup(executor) {
    wakeup.expires_at(asio::steady_timer::time_point::max());
  }
  asio::steady_timer wakeup;
  bool finished = false;
};

// One forwarded request, from connecting to the product until the response
// or the WebSocket ends. Lives in the calling coroutine's frame.
class Forwarder {
 public:
  Forwarder(Session& session, HeadParser& parser, const Exchange& exchange,
            const http::Request& request, http::ProxyTarget target, const ProxySettings& settings)
      : session_(session),
        parser_(parser),
        exchange_(exchange),
        request_(request),
        target_(std::move(target)),
        settings_(settings) {}

  ~Forwarder() {
    if (access_check_) {
      access_check_->stopped = true;
      access_check_->timer.cancel();
    }
    session_.close_upstream = nullptr;
    if (upstream_) upstream_->Close();
  }

  asio::awaitable<Next> Run();

 private:
  void StartAccessCheck();
  asio::awaitable<SystemError> Connect(const tcp::endpoint& endpoint);
  asio::awaitable<SystemError> WriteUpstream(std::string_view data);
  asio::awaitable<BodyStatus> SendRequestBody(bool chunked);
  asio::awaitable<SystemError> ReadResponseHead(std::optional<ResponseParser>& response);
  asio::awaitable<Next> RelayResponse(ResponseParser& response);
  asio::awaitable<Next> RelayWebSocket(ResponseParser& response);
  asio::awaitable<void> RelayClientToProduct();
  asio::awaitable<Next> SendError(http::Response response);
  asio::awaitable<Next> FailBeforeResponse(const SystemError& error);
  http::Response InvalidProductResponse() const;
  http::HeaderList ProductHeaders(const ResponseParser& response) const;

  Session& session_;
  HeadParser& parser_;
  const Exchange& exchange_;
  const http::Request& request_;
  const http::ProxyTarget target_;
  const ProxySettings& settings_;
  std::shared_ptr<Upstream> upstream_;
  std::shared_ptr<AccessCheck> access_check_;
  bool connected_ = false;
};

asio::awaitable<Next> Forwarder::Run() {
  // From here on the client's side is timed per read and write only: the
  // product may take its time, within its own deadlines.
  session_.Disarm();

  // The caller builds the address and headers. Reject ones that would send
  // the request elsewhere or let a header value add headers.
  std::optional<tcp::endpoint> endpoint = ParseProductAddress(target_.address);
  if (!endpoint) {
    log::Error("proxy target address is not IP:port",
               {{"request_id", exchange_.request_id}, {"address", target_.address}});
    co_return co_await SendError(MakeErrorResponse(ErrorCode::kInternal, "", exchange_.request_id));
  }
  if (Status valid = http::CheckRequestHeaders(target_.request_headers); !valid) {
    log::Error("proxy target has an invalid request header",
               {{"request_id", exchange_.request_id}, {"error", valid.error().message}});
    co_return co_await SendError(MakeErrorResponse(ErrorCode::kInternal, "", exchange_.request_id));
  }
  boost::optional<std::uint64_t> declared = parser_.content_length();
  if (target_.max_body_bytes > 0 && declared && *declared > target_.max_body_bytes) {
    co_return co_await SendError(
        *BodyFailureResponse(BodyStatus::kTooLarge, target_.max_body_bytes, exchange_.request_id));
  }

  StartAccessCheck();

  // Connect and send the head, with the framing the client's body has.
  if (SystemError error = co_await Connect(*endpoint)) co_return co_await FailBeforeResponse(error);
  connected_ = true;
  bool websocket = exchange_.version >= 11 && http::IsWebSocketUpgrade(request_);
  bool chunked = parser_.chunked();
  http::UpstreamBody framing = http::UpstreamBody::kNone;
  if (declared) framing = http::UpstreamBody::kContentLength;
  if (chunked) framing = http::UpstreamBody::kChunked;
  const std::string head = http::FormatUpstreamRequestHead(
      request_.method, target_.target, target_.request_headers, framing,
      declared ? *declared : 0, websocket, target_.address);
  if (SystemError error = co_await WriteUpstream(head)) co_return co_await FailBeforeResponse(error);

  // Stream the body up. A product that stops reading it may have sent its
  // response already, so the response is still read after a failed write.
  BodyStatus sent = co_await SendRequestBody(chunked);
  session_.Disarm();
  if (sent == BodyStatus::kClientFailed) co_return Next::kClose;
  if (sent == BodyStatus::kTooLarge || sent == BodyStatus::kMalformed) {
    upstream_->Close();
    co_return co_await SendError(
        *BodyFailureResponse(sent, target_.max_body_bytes, exchange_.request_id));
  }

  std::optional<ResponseParser> response;
  if (SystemError error = co_await ReadResponseHead(response)) {
    co_return co_await FailBeforeResponse(error);
  }
  if (response->get().result_int() == 101) {
    if (websocket) co_return co_await RelayWebSocket(*response);
    log::Warning("system's product switched protocols without an upgrade request",
                 {{"request_id", exchange_.request_id}, {"address", target_.address}});
    co_return co_await SendError(InvalidProductResponse());
  }
  co_return co_await RelayResponse(*response);
}

// Starts re-checking the client's access, when the target asks for it. The
// check runs until ~Forwarder() stops it.
void Forwarder::StartAccessCheck() {
  if (!target_.still_allowed || target_.recheck_interval.count() <= 0 ||
      !settings_.run_on_handler_thread) {
    return;
  }
  auto executor = session_.stream.get_executor();
  access_check_ = std::make_shared<AccessCheck>(executor);
  asio::co_spawn(executor,
                 CheckAccess(session_, access_check_, target_.still_allowed,
                             target_.recheck_interval, settings_.run_on_handler_thread,
                             exchange_.request_id),
                 [](std::exception_ptr failure) { LogFailure("proxy access check", failure); });
}

asio::awaitable<SystemError> Forwarder::Connect(const tcp::endpoint& endpoint) {
  upstream_ = std::make_shared<Upstream>(session_.stream.get_executor());
  session_.close_upstream = [weak = std::weak_ptr<Upstream>(upstream_)] {
    if (auto upstream = weak.lock()) upstream->Close();
  };

  SystemError error;
  upstream_->socket.open(endpoint.protocol(), error);
  if (error) co_return error;
  upstream_->socket.set_option(tcp::no_delay(true), error);
  // The watcher stops once the socket closes, so it starts after open().
  asio::co_spawn(upstream_->socket.get_executor(), WatchUpstreamDeadline(upstream_),
                 [](std::exception_ptr failure) { LogFailure("proxy deadline", failure); });
  upstream_->ExpireAfter(settings_.connect_timeout);
  auto [connect_error] = co_await upstream_->socket.async_connect(endpoint, kNoThrow);
  co_return connect_error;
}

asio::awaitable<SystemError> Forwarder::WriteUpstream(std::string_view data) {
  upstream_->ExpireAfter(settings_.idle_timeout);
  auto [error, bytes] = co_await asio::async_write(
      upstream_->socket, asio::buffer(data.data(), data.size()), kNoThrow);
  co_return error;
}

// Streams the client's request body to the product, re-chunked when the
// client sent it chunked. Returns kSinkFailed when the product stopped
// taking it.
asio::awaitable<BodyStatus> Forwarder::SendRequestBody(bool chunked) {
  BodySink forward = [this, chunked](std::string_view piece) -> asio::awaitable<bool> {
    std::string chunk;
    if (chunked) {
      chunk = http::FormatChunk(piece);
      piece = chunk;
    }
    SystemError error = co_await WriteUpstream(piece);
    co_return !error;
  };
  BodyStatus status =
      co_await ReadBody(session_, parser_, target_.max_body_bytes, settings_.idle_timeout, forward);
  if (status == BodyStatus::kComplete && chunked) {
    const std::string last_chunk = "0\r\n\r\n";
    if (SystemError error = co_await WriteUpstream(last_chunk)) co_return BodyStatus::kSinkFailed;
  }
  co_return status;
}

// Reads the product's final response head, skipping interim 1xx responses
// (100 Continue, 103 Early Hints) but not 101.
asio::awaitable<SystemError> Forwarder::ReadResponseHead(std::optional<ResponseParser>& response) {
  for (;;) {
    response.emplace();
    response->header_limit(kMaxResponseHeadBytes);
    response->body_limit(boost::none);
    if (exchange_.head) response->skip(true);
    for (;;) {
      SystemError error;
      if (upstream_->buffer.size() > 0) {
        size_t used = response->put(upstream_->buffer.data(), error);
        upstream_->buffer.consume(used);
      }
      if (error && error != bhttp::error::need_more) co_return error;
      if (response->is_header_done()) break;
      upstream_->ExpireAfter(settings_.idle_timeout);
      auto [read_error, bytes] = co_await upstream_->socket.async_read_some(
          upstream_->buffer.prepare(kReadBytes), kNoThrow);
      upstream_->buffer.commit(bytes);
      if (read_error) co_return read_error;
    }
    int status = response->get().result_int();
    if (status < 100 || status >= 200 || status == 101) co_return SystemError();
  }
}

http::HeaderList Forwarder::ProductHeaders(const ResponseParser& response) const {
  http::HeaderList headers;
  for (const auto& field : response.get()) {
    headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return headers;
}

// Sends the product's response head and streams its body to the client,
// re-framed: the product's Content-Length when it sent one, else chunked (or,
// for HTTP/1.0 clients, ended by closing the connection).
asio::awaitable<Next> Forwarder::RelayResponse(ResponseParser& response) {
  int status = response.get().result_int();
  http::Response head = http::MakeProxiedResponse(status, ProductHeaders(response), target_);
  if (Status valid = http::CheckResponse(head); !valid) {
    log::Warning("system's product sent an invalid response",
                 {{"request_id", exchange_.request_id},
                  {"address", target_.address},
                  {"error", valid.error().message}});
    co_return co_await SendError(InvalidProductResponse());
  }

  http::ResponseFraming framing;
  framing.version = exchange_.version;
  framing.keep_alive = exchange_.keep_alive && parser_.is_done() && !*settings_.stopping;
  bool has_body = !exchange_.head && http::StatusAllowsBody(status);
  boost::optional<std::uint64_t> length = response.content_length();
  if (exchange_.head && length && http::StatusAllowsBody(status)) {
    framing.content_length = *length;  // what a GET would get
  } else if (has_body && length) {
    framing.content_length = *length;
  } else if (has_body && exchange_.version >= 11) {
    framing.chunked = true;
  } else if (has_body) {
    framing.keep_alive = false;
  }
  const std::string wire = http::FormatResponseHead(head, framing);
  session_.ExpireAfter(settings_.idle_timeout);
  if (SystemError error = co_await WriteAll(session_, wire)) co_return Next::kClose;
  session_.Disarm();

  // The body, one piece at a time. A failure from here on can only close the
  // connection: the client already has the status, so a cut-short body is
  // how it learns of the failure.
  response.eager(true);
  std::vector<char> piece(kPieceBytes);
  while (!response.is_done()) {
    response.get().body().data = piece.data();
    response.get().body().size = piece.size();
    SystemError error;
    size_t used = 0;
    if (upstream_->buffer.size() > 0) {
      used = response.put(upstream_->buffer.data(), error);
      upstream_->buffer.consume(used);
    }
    if (error == bhttp::error::need_buffer) error = {};
    if (error && error != bhttp::error::need_more) co_return Next::kClose;

    size_t produced = piece.size() - response.get().body().size;
    if (produced > 0) {
      std::string_view data(piece.data(), produced);
      std::string chunk;
      if (framing.chunked) {
        chunk = http::FormatChunk(data);
        data = chunk;
      }
      session_.ExpireAfter(settings_.idle_timeout);
      if (SystemError write_error = co_await WriteAll(session_, data)) co_return Next::kClose;
      session_.Disarm();
      continue;
    }
    if (response.is_done()) break;
    // Framing without body bytes (a chunk header) may remain to parse.
    if (used > 0 && upstream_->buffer.size() > 0) continue;

    upstream_->ExpireAfter(settings_.idle_timeout);
    auto [read_error, bytes] = co_await upstream_->socket.async_read_some(
        upstream_->buffer.prepare(kReadBytes), kNoThrow);
    upstream_->buffer.commit(bytes);
    if (read_error == asio::error::eof) {
      // Ends a body delimited by the close; for any other framing the body
      // was cut short, which put_eof reports.
      SystemError eof_error;
      response.put_eof(eof_error);
      if (eof_error) co_return Next::kClose;
    } else if (read_error) {
      co_return Next::kClose;
    }
  }

  if (framing.chunked) {
    const std::string last_chunk = "0\r\n\r\n";
    session_.ExpireAfter(settings_.idle_timeout);
    if (SystemError error = co_await WriteAll(session_, last_chunk)) co_return Next::kClose;
  }
  if (framing.keep_alive && !*settings_.stopping) co_return Next::kKeepAlive;
  // The product may have sent its response before taking the whole request
  // body, which the client may still be sending.
  co_return parser_.is_done() ? Next::kCloseTls : Next::kLingerAndClose;
}

// Sends the product's 101 to the client, then relays bytes both ways until
// either side closes, half-closes or fails, and closes both.
asio::awaitable<Next> Forwarder::RelayWebSocket(ResponseParser& response) {
  http::Response head = http::MakeProxiedResponse(101, ProductHeaders(response), target_);
  const std::string wire = http::FormatUpgradeResponseHead(head);
  session_.ExpireAfter(settings_.idle_timeout);
  if (SystemError error = co_await WriteAll(session_, wire)) co_return Next::kClose;

  // A WebSocket never ends on its own, so Stop() closes it at once, as it
  // does idle connections. Stop() sets `stopping` before it looks at `idle`.
  session_.idle = true;
  if (*settings_.stopping) co_return Next::kClose;
  session_.Disarm();
  upstream_->Disarm();

  auto executor = session_.stream.get_executor();
  auto product_done = std::make_shared<Completion>(executor);
  asio::co_spawn(executor, RelayProductToClient(session_, upstream_),
                 [product_done](std::exception_ptr failure) {
                   LogFailure("WebSocket relay", failure);
                   product_done->finished = true;
                   product_done->wakeup.cancel();
                 });
  co_await RelayClientToProduct();
  session_.Close();  // ends the other direction too
  while (!product_done->finished) co_await product_done->wakeup.async_wait(kNoThrow);
  co_return Next::kClose;
}

// Copies the client's bytes to the product, reading them as WebSocket frames
// on the way to report messages, until either side fails or closes.
asio::awaitable<void> Forwarder::RelayClientToProduct() {
  std::optional<http::WebSocketMessageReader> reader;
  if (target_.on_client_message) {
    reader.emplace(target_.on_client_message, kMaxReportedMessageBytes);
  }
  for (;;) {
    if (session_.buffer.size() > 0) {
      auto data = session_.buffer.data();
      std::string_view bytes(static_cast<const char*>(data.data()), data.size());
      if (reader) {
        bool valid = true;
        try {
          valid = reader->Feed(bytes);
        } catch (const std::exception& e) {
          log::Error("WebSocket message callback threw an exception",
                     {{"request_id", exchange_.request_id}, {"error", e.what()}});
          valid = false;
        }
        if (!valid) {
          log::Debug("client WebSocket framing is invalid; no longer reading its messages",
                     {{"request_id", exchange_.request_id}});
          reader.reset();
        }
      }
      auto [error, written] = co_await asio::async_write(upstream_->socket, data, kNoThrow);
      if (error) co_return;
      session_.buffer.consume(bytes.size());
    }
    if (SystemError error = co_await ReadSome(session_)) co_return;
  }
}

// Sends one of the server's own error responses. The connection stays open
// only when the request body was read in full.
asio::awaitable<Next> Forwarder::SendError(http::Response response) {
  http::ResponseFraming framing;
  framing.version = exchange_.version;
  bool body_read = parser_.is_done();
  framing.keep_alive = exchange_.keep_alive && body_read && !*settings_.stopping;
  framing.content_length = response.body.size();
  std::string wire = http::FormatResponseHead(response, framing);
  if (!exchange_.head) wire += response.body;
  session_.ExpireAfter(settings_.request_timeout);
  if (SystemError error = co_await WriteAll(session_, wire)) co_return Next::kClose;
  if (framing.keep_alive) co_return Next::kKeepAlive;
  co_return body_read ? Next::kCloseTls : Next::kLingerAndClose;
}

// Sends 502 when the product could not be reached or failed before its
// response head, and 504 when it stayed silent past the idle timeout.
asio::awaitable<Next> Forwarder::FailBeforeResponse(const SystemError& error) {
  bool timed_out = connected_ && upstream_ && upstream_->timed_out;
  std::string message = "the system's product did not answer";
  if (timed_out) {
    auto timeout = settings_.idle_timeout;
    message += timeout.count() % 1000 == 0
                   ? " within " + std::to_string(timeout.count() / 1000) + " s"
                   : " within " + std::to_string(timeout.count()) + " ms";
  } else if (!connected_ && upstream_ && upstream_->timed_out) {
    message += ": connecting to it timed out";
  } else {
    message += ": " + error.message();
  }
  log::Info("proxied request failed before the product's response",
            {{"request_id", exchange_.request_id},
             {"address", target_.address},
             {"error", message}});
  if (upstream_) upstream_->Close();

  http::Response response =
      MakeErrorResponse(ErrorCode::kUnavailable, std::move(message), exchange_.request_id);
  response.status = timed_out ? 504 : 502;
  co_return co_await SendError(std::move(response));
}

// Returns the 502 for a product whose response the proxy cannot relay.
http::Response Forwarder::InvalidProductResponse() const {
  http::Response response =
      MakeErrorResponse(ErrorCode::kUnavailable,
                        "the system's product did not answer with valid HTTP", exchange_.request_id);
  response.status = 502;
  return response;
}

}  // namespace

asio::awaitable<Next> ForwardToProduct(Session& session, HeadParser& parser,
                                       const Exchange& exchange, const http::Request& request,
                                       http::ProxyTarget target, const ProxySettings& settings) {
  Forwarder forwarder(session, parser, exchange, request, std::move(target), settings);
  co_return co_await forwarder.Run();
}

}  // namespace puddle::server_internal
