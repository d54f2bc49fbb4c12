// The product health check: one HTTP GET with the product's token.
#pragma once

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

}  // namespace puddle::local
