// Structured logging: one line per event, "message key=value ...", fixed field names.
//
// Field names are the fixed vocabulary: system_id, job_id, user, provider,
// transition, attempt, error, path, address. Never pass a secret as a value.
// Thread-safe (spdlog's synchronous multi-threaded logger on stderr).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace puddle::log {

using Field = std::pair<std::string_view, std::string>;

enum class Level { kDebug, kInfo, kWarning, kError };

// Sets the lowest level that is written; "debug", "info", "warning" or "error".
void SetLevel(Level level);

void Write(Level level, std::string_view message, std::initializer_list<Field> fields);

inline void Debug(std::string_view message, std::initializer_list<Field> fields = {}) {
  Write(Level::kDebug, message, fields);
}
inline void Info(std::string_view message, std::initializer_list<Field> fields = {}) {
  Write(Level::kInfo, message, fields);
}
inline void Warning(std::string_view message, std::initializer_list<Field> fields = {}) {
  Write(Level::kWarning, message, fields);
}
inline void Error(std::string_view message, std::initializer_list<Field> fields = {}) {
  Write(Level::kError, message, fields);
}

}  // namespace puddle::log
