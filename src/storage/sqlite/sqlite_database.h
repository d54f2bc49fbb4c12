// SqliteDatabase: the embedded store, one SQLite file in WAL mode.
//
// A small pool of connections serves concurrent readers; writers serialise on
// SQLite's own lock (BEGIN IMMEDIATE) with a busy timeout. Thread-safe.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/database.h"

struct sqlite3;

namespace puddle::sql {

class SqliteDatabase final : public Database {
 public:
  // Opens (creating if needed) the database file at `path` with `pool_size` connections.
  static Result<std::unique_ptr<SqliteDatabase>> Open(const std::string& path, int pool_size = 4);
  ~SqliteDatabase() override;

  std::string_view Dialect() const override { return "sqlite"; }
  Status InTx(TxMode mode, const std::function<Status(Connection&)>& body) override;
  Status Migrate() override;

 private:
  class SqliteConnection;
  SqliteDatabase() = default;

  std::unique_ptr<SqliteConnection> Acquire();
  void Release(std::unique_ptr<SqliteConnection> connection);

  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_;  // GUARDED_BY(mutex_)
};

}  // namespace puddle::sql
