#include "storage/migrations.h"

#include <string>

#include "common/log.h"

namespace puddle::sql {

Status ApplyMigrations(Connection& connection, const std::vector<Migration>& migrations) {
  auto created = connection.ExecuteScript(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER PRIMARY KEY, name TEXT NOT NULL)");
  if (!created) return created;
  auto rows = connection.Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {});
  if (!rows) return tl::unexpected(rows.error());
  int64_t current = rows->empty() ? 0 : (*rows)[0].Int(0);

  int64_t newest = migrations.empty() ? 0 : migrations.back().version;
  if (current > newest) {
    return MakeError(ErrorCode::kUnavailable,
                     "the database schema is version " + std::to_string(current) +
                         " but this puddle binary knows only up to " + std::to_string(newest) +
                         "; run the newer puddle binary that upgraded it");
  }

  for (const auto& migration : migrations) {
    if (migration.version <= current) continue;
    auto applied = connection.ExecuteScript(migration.sql);
    if (!applied) {
      return tl::unexpected(applied.error().WithContext(
          "migration " + std::to_string(migration.version) + " " + std::string(migration.name)));
    }
    auto recorded = connection.Execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
        {int64_t{migration.version}, std::string(migration.name)});
    if (!recorded) return tl::unexpected(recorded.error());
    log::Info("applied migration", {{"version", std::to_string(migration.version)},
                                    {"name", std::string(migration.name)}});
  }
  return Ok();
}

}  // namespace puddle::sql
