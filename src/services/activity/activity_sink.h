// ActivitySink: where the access proxy reports what passes through it, so
// that idle detection can tell a person at work from a page left open.
//
// The proxy reports every request it forwards and every WebSocket message a
// client sends; the sink decides what counts as activity (Jupyter's
// background polls and heartbeats do not, kernel execute requests do).
// Implementations keep what they learn in memory and must return quickly:
// these calls run on the proxy's I/O threads, once per request or message.
#pragma once

#include <string>
#include <string_view>

namespace puddle {

class ActivitySink {
 public:
  virtual ~ActivitySink() = default;

  // A request forwarded to system `system_id`'s product. `path` is the
  // percent-decoded path as the product sees it, query excluded
  // ("/systems/ab12/api/kernels", or "/api/kernels" for a strip-mode product).
  virtual void OnProxiedRequest(const std::string& system_id, std::string_view method,
                                std::string_view path) = 0;

  // A message a client sent over a proxied WebSocket: its first 64 KiB at
  // most, as received after unmasking.
  virtual void OnClientMessage(const std::string& system_id, std::string_view message) = 0;
};

}  // namespace puddle
