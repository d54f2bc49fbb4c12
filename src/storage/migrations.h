// Numbered schema migrations, applied in order inside one write transaction.
#pragma once

#include <string_view>
#include <vector>

#include "storage/database.h"

namespace puddle::sql {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Applies every migration newer than the database's version. Fails, changing
// nothing, when the database's version is newer than the newest one known
// here: an older binary must not run on a newer schema.
Status ApplyMigrations(Connection& connection, const std::vector<Migration>& migrations);

}  // namespace puddle::sql
