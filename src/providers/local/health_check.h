// The product health check: one HTTP GET with the product's token.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "model/system.h"

namespace puddle::local {

// GETs `url` with "Authorization: token <token>", never through a proxy and
// without following redirects. Returns kReady for 200, kStarting when the
// connection is refused (the product is not listening yet), kUnhealthy for
// anything else, including a timeout. Thread-safe.
ProductStatus CheckHttpHealth(const std::string& url, const std::string& token,
                              std::chrono::milliseconds timeout);

// Returns true when some TCP socket listens on `address`:`port` and every
// socket that could take a connection to it (bound to that address, to its
// IPv4-mapped form or to a wildcard) belongs to `uid`, per /proc/net/tcp and
// /proc/net/tcp6. Another user's process that took the port first must never
// receive the product's token.
bool ListenerOwnedBy(const std::string& address, int port, uid_t uid);

}  // namespace puddle::local
