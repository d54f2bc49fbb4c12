// What counts as activity for a Jupyter Notebook system, and reading its
// kernels' state from GET <basePath>api/kernels.
//
// Jupyter's pages poll the server on their own (the tree page lists
// api/contents, api/sessions, api/kernels and api/terminals every few
// seconds), so a page left open would keep a system alive forever if every
// request counted. Only requests a person causes count: page loads, saves
// and other writes. Over a kernel's WebSocket, Jupyter Notebook 6 sends each
// message as a JSON text frame {"header":{"msg_type":...},...}; only
// execute_request, input_reply and comm_msg (widgets) count. Over a
// terminal's WebSocket (terminado), ["stdin", ...] counts: that is typing.
//
// Limitations: the binary kernel protocol of Jupyter Server 2
// (v1.kernel.websocket.jupyter.org) is not parsed, so its messages never
// count; proxy activity then comes from page loads and writes only.
#pragma once

#include <optional>
#include <string_view>

#include "common/result.h"
#include "common/time.h"

namespace puddle::jupyter {

// True when a request forwarded to the product counts as activity. `path`
// is as the product sees it, with or without the "/systems/<id>" prefix.
bool IsUserRequest(std::string_view system_id, std::string_view method, std::string_view path);

// True when a message a client sent over a WebSocket counts as activity.
// `message` may be cut short (the proxy passes the first 64 KiB at most).
bool IsUserMessage(std::string_view message);

// The kernels of one Jupyter server, from its api/kernels answer.
struct KernelsReport {
  int kernels = 0;
  bool busy = false;  // some kernel's execution_state is "busy"
  // Latest last_activity of any kernel: Jupyter updates it on every message
  // a kernel publishes, so it shows recent work even between two checks.
  std::optional<TimePoint> last_activity;
};

// Parses `body`, a JSON array of kernel models. Fails with kInternal when it
// is not one.
Result<KernelsReport> ParseKernels(std::string_view body);

}  // namespace puddle::jupyter
