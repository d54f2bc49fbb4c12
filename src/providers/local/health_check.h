// The product health check: one HTTP GET with the product's token.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "common/result.h"
#include "model/system.h"

namespace puddle::local {

// GETs `url` with "Authorization: token <token>", never through a proxy and
// without following redirects. Returns kReady for 200, kStarting when the
// connection is refused (the product is not listening yet), kUnhealthy for
// anything else, including a timeout. Thread-safe.
ProductStatus CheckHttpHealth(const std::string& url, const std::string& token,
                              std::chrono::milliseconds timeout);

// GETs `url` like CheckHttpHealth and returns the body of a 200 answer.
// Fails with kUnavailable on any other status, on a connection error or
// timeout, and when the body exceeds `max_bytes`. Thread-safe.
Result<std::string> GetWithToken(const std::string& url, const std::string& token,
                                 std::chrono::milliseconds timeout, size_t max_bytes);

// Returns true when some TCP socket listens on `address`:`port` and every
// socket that could take a connection to it (bound to that address, to its
// IPv4-mapped form or to a wildcard) belongs to `uid`, per /proc/net/tcp and
// /proc/net/tcp6. Another user's process that took the port first must never
// receive the product's token. `proc_net_dir` selects the network namespace
// whose socket table is read: "/proc/<pid>/net" for the namespace of <pid>.
bool ListenerOwnedBy(const std::string& address, int port, uid_t uid,
                     const std::string& proc_net_dir = "/proc/net");

// Returns true when any TCP socket listens where a connection to
// `address`:`port` could land, in the namespace of `proc_net_dir`.
bool HasListener(const std::string& address, int port,
                 const std::string& proc_net_dir = "/proc/net");

}  // namespace puddle::local
