#include "storage/store_internal.h"

#include <algorithm>

#include "common/crypto.h"

namespace puddle::store_internal {

std::string EncodeCursor(const std::string& sort_value, const std::string& id) {
  return Base64UrlEncode(sort_value + '\n' + id);
}

bool DecodeCursor(const std::string& cursor, std::string& sort_value, std::string& id) {
  auto decoded = Base64UrlDecode(cursor);
  if (!decoded) return false;
  auto newline = decoded->find('\n');
  if (newline == std::string::npos) return false;
  sort_value = decoded->substr(0, newline);
  id = decoded->substr(newline + 1);
  return true;
}

int PageLimit(int limit) { return std::clamp(limit, 1, 500); }

User ReadUser(const sql::Row& row) {
  User user;
  user.id = row.Text(0);
  user.username = row.Text(1);
  user.role = row.Text(2) == "admin" ? Role::kAdmin : Role::kUser;
  user.disabled = row.Bool(3);
  user.password_hash = row.Text(4);
  user.quota.systems = row.OptionalInt(5);
  user.quota.running_systems = row.OptionalInt(6);
  user.quota.monthly_budget = row.OptionalReal(7);
  user.credential_generation = row.Int(8);
  user.created_at = Time(row, 9);
  return user;
}

}  // namespace puddle::store_internal
