// The parts of the access proxy's forwarding that need no sockets: which
// headers cross the proxy, the request head sent to a product, the response
// head sent back, and a WebSocket frame reader for the client's messages.
// Kept free of Beast so it compiles fast and is tested without sockets; the
// I/O lives in proxy_transport.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/http.h"
#include "common/result.h"

namespace puddle::http {

// Returns `headers` without the hop-by-hop ones (RFC 9110 section 7.6.1):
// Connection and every header it names, Keep-Alive, Proxy-Connection,
// Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding and
// Upgrade. Names compare without regard to case.
HeaderList WithoutHopByHopHeaders(const HeaderList& headers);

// Returns whether `request` asks for a WebSocket upgrade: a GET whose
// Connection header lists "upgrade" and whose Upgrade header lists
// "websocket" (RFC 6455 section 4.2.1).
bool IsWebSocketUpgrade(const Request& request);

// Body framing of a request sent to a product.
enum class UpstreamBody { kNone, kContentLength, kChunked };

// Formats the request head sent to a product: "<method> <target> HTTP/1.1",
// `headers` minus hop-by-hop headers, Content-Length, Transfer-Encoding and
// Expect, then the framing the proxy chose. A WebSocket upgrade gets
// "Connection: Upgrade" and "Upgrade: websocket"; any other request gets
// "Connection: close" because each request uses a fresh connection. Keeps
// the first Host of `headers` only, and adds "Host: <default_host>" when
// there is none.
std::string FormatUpstreamRequestHead(std::string_view method, std::string_view target,
                                      const HeaderList& headers, UpstreamBody body,
                                      uint64_t content_length, bool websocket_upgrade,
                                      std::string_view default_host);

// Frames `data` as one chunk of a chunked body (RFC 9112 section 7.1).
std::string FormatChunk(std::string_view data);

// Returns internal naming the header when a name in `headers` is not an
// RFC 9110 token or a value contains a control character, which would let it
// add headers or end the head early.
Status CheckRequestHeaders(const HeaderList& headers);

// Builds the response sent to the client from the product's status and
// headers: hop-by-hop headers dropped, names lower-cased, then
// `target.remove_response_headers` removed and `target.add_response_headers`
// set (replacing any header of the same name).
Response MakeProxiedResponse(int status, const HeaderList& product_headers,
                             const ProxyTarget& target);

// Formats the "101 Switching Protocols" head for a WebSocket upgrade the
// product accepted: `response`'s headers (Sec-WebSocket-Accept and the like)
// plus "Connection: Upgrade" and "Upgrade: websocket".
std::string FormatUpgradeResponseHead(const Response& response);

// Reads the client-to-product byte stream of a WebSocket connection as
// RFC 6455 frames and reports each complete text or binary message, unmasked
// and cut to `max_message_bytes`. Control frames (close, ping, pong) may sit
// between the fragments of a message and are not reported. The bytes
// themselves are the caller's to forward. Not thread-safe.
class WebSocketMessageReader {
 public:
  using OnMessage = std::function<void(std::string_view message)>;

  WebSocketMessageReader(OnMessage on_message, size_t max_message_bytes);

  // Consumes the next bytes of the stream, calling on_message for each
  // message they complete. Returns false once the stream broke RFC 6455
  // framing (reserved opcode, a continuation frame outside a message, a new
  // message inside another, a fragmented or oversized control frame); later
  // calls then do nothing and return false.
  bool Feed(std::string_view bytes);

 private:
  bool ParseHeader();
  void ConsumePayload(std::string_view& bytes);
  void FinishFrame();

  OnMessage on_message_;
  size_t max_message_bytes_;
  bool broken_ = false;

  std::string header_;  // bytes of the current frame header read so far
  bool in_payload_ = false;
  bool fin_ = false;
  uint8_t opcode_ = 0;
  bool masked_ = false;
  uint8_t mask_[4] = {0, 0, 0, 0};
  uint64_t payload_left_ = 0;
  uint64_t payload_offset_ = 0;  // position within the frame, for the mask

  bool in_message_ = false;  // a text or binary message awaits its last fragment
  std::string message_;      // its payload so far, at most max_message_bytes_
};

}  // namespace puddle::http
