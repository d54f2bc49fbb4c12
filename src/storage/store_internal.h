// Helpers shared by the store_*.cc files: row mappers and cursors.
#pragma once

#include <string>

#include "common/time.h"
#include "model/user.h"
#include "storage/database.h"

namespace puddle::store_internal {

inline int64_t Millis(TimePoint time) { return ToUnixMillis(time); }
inline TimePoint Time(const sql::Row& row, size_t column) { return FromUnixMillis(row.Int(column)); }
inline std::optional<TimePoint> OptionalTime(const sql::Row& row, size_t column) {
  auto value = row.OptionalInt(column);
  if (!value) return std::nullopt;
  return FromUnixMillis(*value);
}
inline sql::Value OptionalMillis(const std::optional<TimePoint>& time) {
  if (!time) return sql::Null();
  return ToUnixMillis(*time);
}

// Cursor over (sort value, id), opaque to clients.
std::string EncodeCursor(const std::string& sort_value, const std::string& id);
bool DecodeCursor(const std::string& cursor, std::string& sort_value, std::string& id);

// Clamps a requested page size to 1..500.
int PageLimit(int limit);

// The columns ReadUser expects, in its order.
inline constexpr const char* kUserColumns =
    "id, username, role, disabled, password_hash, quota_systems, quota_running_systems, "
    "quota_monthly_budget, credential_generation, created_at";
User ReadUser(const sql::Row& row);

}  // namespace puddle::store_internal
