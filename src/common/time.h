// Time points and their RFC 3339 text form.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace puddle {

using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

// Formats as RFC 3339 in UTC with millisecond precision: "2026-12-04T20:50:23.125Z".
std::string FormatTime(TimePoint time);

// Parses RFC 3339 with a 'Z' or numeric offset, fractional seconds optional,
// or a plain date "YYYY-MM-DD" (midnight UTC). Returns nullopt when malformed.
std::optional<TimePoint> ParseTime(std::string_view text);

// Milliseconds since the Unix epoch, the form times are stored in.
inline int64_t ToUnixMillis(TimePoint time) { return time.time_since_epoch().count(); }
inline TimePoint FromUnixMillis(int64_t millis) {
  return TimePoint(std::chrono::milliseconds(millis));
}

}  // namespace puddle
