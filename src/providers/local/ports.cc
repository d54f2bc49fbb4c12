#include "providers/local/ports.h"

#include <sodium.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "providers/local/unique_fd.h"

namespace puddle::local {
namespace {

// Returns -1 when `address` is not a numeric IPv4 or IPv6 address.
int BindProbe(const std::string& address, int port) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  int family = AF_INET;
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    return -1;
  }
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) return 0;
  // Servers bind with SO_REUSEADDR, and so does the probe: connections of a
  // stopped product left in TIME_WAIT do not keep its port from being
  // reused, while any socket bound or listening on the port still does.
  int enable = 1;
  setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &enable, sizeof(enable));
  return bind(fd.Get(), reinterpret_cast<sockaddr*>(&storage), length) == 0 ? 1 : 0;
}

}  // namespace

bool IsPortFree(const std::string& address, int port) { return BindProbe(address, port) == 1; }

Result<int> AllocatePort(const std::string& address, int port_min, int port_max,
                         const std::set<int>& reserved, std::optional<int> preferred) {
  if (!address.empty() && BindProbe(address, port_min) < 0) {
    return InternalError("listen address " + address + " is not an IPv4 or IPv6 address");
  }
  auto usable = [&](int port) {
    return port >= port_min && port <= port_max && !reserved.contains(port) &&
           (address.empty() || IsPortFree(address, port));
  };
  if (preferred && usable(*preferred)) return *preferred;

  // The scan starts at a random port, so installations sharing a range (and
  // the probe-then-bind race between them) rarely pick the same one.
  int span = port_max - port_min + 1;
  int offset = static_cast<int>(randombytes_uniform(static_cast<uint32_t>(span)));
  for (int i = 0; i < span; ++i) {
    int port = port_min + (offset + i) % span;
    if (usable(port)) return port;
  }
  return MakeError(ErrorCode::kUnavailable,
                   "no free port left in " + std::to_string(port_min) + "-" +
                       std::to_string(port_max) + (address.empty() ? "" : " on " + address) +
                       "; stop some systems or widen providers.local.portRange");
}

}  // namespace puddle::local
