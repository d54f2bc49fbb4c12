// One-time codes and system cookies: what lets a browser into one system.
#pragma once

#include <string>

#include "common/time.h"

namespace puddle {

enum class SystemAccessKind {
  kCode,    // single use, exchanged on the system's origin for a cookie
  kCookie,  // the __Host-puddle_system cookie of one system
};

// Stored by the SHA-256 of its value, which is never stored.
struct SystemAccessGrant {
  std::string hash;
  SystemAccessKind kind = SystemAccessKind::kCode;
  std::string system_id;
  std::string user_id;
  // SHA-256 of the browser session that asked; the grant ends with it.
  std::string session_hash;
  TimePoint created_at;
  TimePoint expires_at;
};

}  // namespace puddle
