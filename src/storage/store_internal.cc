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

}  // namespace puddle::store_internal
