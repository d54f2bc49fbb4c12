// Opening the configured store: PostgreSQL when db.connection.drivername is
// postgres, otherwise the embedded SQLite file in the data directory.
#pragma once

#include <memory>

#include "app/data_dir.h"
#include "common/clock.h"
#include "common/result.h"
#include "config/config.h"
#include "storage/postgres/postgres_database.h"
#include "storage/store.h"

namespace puddle {

// The libpq settings of `database` with a pool of at most `pool_size`
// connections.
sql::PostgresOptions PostgresOptionsFrom(const DatabaseConfig& database, int pool_size);

// Opens and migrates the configured store. PostgreSQL connects once here, so
// an unreachable server or wrong credentials fail at once, with a message that
// names host:port/dbname and never the password. `dir` is used only by SQLite.
Result<std::unique_ptr<Store>> OpenConfiguredStore(const Config& config, const DataDir& dir,
                                                   const Clock& clock, int pool_size);

// "host:port" of the configured PostgreSQL server, with IPv6 addresses in
// brackets, for firewall rules.
std::string PostgresAddress(const DatabaseConfig& database);

}  // namespace puddle
