// The PostgreSQL schema, as numbered migrations that mirror the SQLite ones
// version for version: the same tables, columns, keys and indexes.
#pragma once

#include <vector>

#include "storage/migrations.h"

namespace puddle::sql {

const std::vector<Migration>& PostgresMigrations();

}  // namespace puddle::sql
