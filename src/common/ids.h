// Random identifiers for rows that users see (systems, users, keys, events).
#pragma once

#include <string>

namespace puddle {

// Returns `length` random characters from [a-z2-7] (5 bits each), starting with
// a letter, so the result is also a valid DNS label. Thread-safe.
std::string NewId(size_t length = 16);

}  // namespace puddle
