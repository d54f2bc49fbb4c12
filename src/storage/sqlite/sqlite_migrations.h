// The SQLite schema, as numbered migrations.
#pragma once

#include <vector>

#include "storage/migrations.h"

namespace puddle::sql {

const std::vector<Migration>& SqliteMigrations();

}  // namespace puddle::sql
