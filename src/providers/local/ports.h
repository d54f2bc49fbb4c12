// Choosing the port a product listens on.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "common/result.h"

namespace puddle::local {

// True when a TCP socket with SO_REUSEADDR can bind `address`:`port` right
// now: no socket listens or is bound there (without SO_REUSEADDR), though
// connections in TIME_WAIT may remain. A product that binds without
// SO_REUSEADDR may still fail on such a port until TIME_WAIT ends (60 s).
bool IsPortFree(const std::string& address, int port);

// Returns `preferred` when it lies in [port_min, port_max], is not in
// `reserved` and is free; else the first such port of the range. Fails when
// `address` is not an IPv4 or IPv6 literal or no port is left. An empty
// `address` skips the bind test: a system in its own network namespace
// binds in a namespace where nothing else listens. Thread-safe;
// callers serialize allocation and reservation themselves.
Result<int> AllocatePort(const std::string& address, int port_min, int port_max,
                         const std::set<int>& reserved, std::optional<int> preferred);

}  // namespace puddle::local
