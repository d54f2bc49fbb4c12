#include "app/store_setup.h"

namespace puddle {

sql::PostgresOptions PostgresOptionsFrom(const DatabaseConfig& database, int pool_size) {
  sql::PostgresOptions options;
  options.host = database.host;
  options.port = static_cast<int>(database.port);
  options.user = database.user;
  options.dbname = database.dbname;
  options.password = database.password;
  options.sslmode = database.sslmode;
  options.pool_size = pool_size;
  return options;
}

Result<std::unique_ptr<Store>> OpenConfiguredStore(const Config& config, const DataDir& dir,
                                                   const Clock& clock, int pool_size) {
  if (!config.database.IsPostgres()) {
    auto store = OpenStore(dir, clock);
    if (!store) return tl::unexpected(store.error().WithContext("open the SQLite store"));
    return store;
  }
  auto database = sql::PostgresDatabase::Open(PostgresOptionsFrom(config.database, pool_size));
  if (!database) return tl::unexpected(database.error().WithContext("open the PostgreSQL store"));
  std::string endpoint = (*database)->Endpoint();
  auto store = std::make_unique<Store>(std::move(*database), clock);
  if (auto migrated = store->Migrate(); !migrated) {
    return tl::unexpected(migrated.error().WithContext("migrate the PostgreSQL store " + endpoint));
  }
  return store;
}

std::string PostgresAddress(const DatabaseConfig& database) {
  bool ipv6 = database.host.find(':') != std::string::npos;
  std::string host = ipv6 ? "[" + database.host + "]" : database.host;
  return host + ":" + std::to_string(database.port);
}

}  // namespace puddle
