// PostgresDatabase: the production store, a pool of libpq connections to one
// PostgreSQL database.
//
// Parameters ($1, $2, ...) are sent as text with PQexecParams: int64 as int8,
// double as float8, strings as text and NULL untyped, so an untyped NULL must
// appear where PostgreSQL can infer its type from context (not in `$1 IS NULL`).
// Result columns are typed from their OIDs: int2/int4/int8 and bool read as
// int64, float4/float8/numeric as double, everything else as text.
//
// Write transactions run at READ COMMITTED and read transactions at REPEATABLE
// READ READ ONLY, so a Read() callback reads one snapshot and cannot write.
// Unique violations (SQLSTATE 23505) return kConflict. A failed or lost
// connection, a serialization failure or a deadlock returns kUnavailable.
//
// A connection the server dropped (restart, failover, idle kill) is discarded
// when a statement on it fails. When that happens at BEGIN, before the callback
// ran, InTx retries on a fresh connection, so the first transaction after a
// server restart succeeds. A connection lost later in a transaction fails that
// transaction with kUnavailable and is replaced on the next use.
//
// Thread-safe. InTx blocks while all `pool_size` connections are busy, for at
// most `acquire_timeout_seconds`. Messages and logs name host:port/dbname and
// never the password.
//
// Limitations: unlike SQLite's single writer, write transactions run
// concurrently, so a callback that reads a row, checks it and writes it back
// can lose a concurrent update unless it locks the row. A connection whose peer
// vanished without closing it (a network partition) is noticed only through
// TCP keepalives, after about a minute.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/database.h"

namespace puddle::sql {

// Connection settings; the names follow libpq's connection parameters.
struct PostgresOptions {
  std::string host = "localhost";
  int port = 5432;
  std::string user = "puddle";
  std::string dbname = "puddle";
  std::string password;  // secret: never logged or put in messages
  // libpq sslmode: disable, allow, prefer, require, verify-ca or verify-full.
  std::string sslmode = "require";
  int pool_size = 8;  // maximum open connections
  int connect_timeout_seconds = 10;
  // How long InTx waits for a free connection when all are busy.
  int acquire_timeout_seconds = 30;
};

class PostgresDatabase final : public Database {
 public:
  // Checks the options and opens the first connection, so wrong credentials or
  // an unreachable server fail here (kUnavailable) instead of on first use.
  // The other connections open when concurrent transactions need them.
  static Result<std::unique_ptr<PostgresDatabase>> Open(const PostgresOptions& options);
  ~PostgresDatabase() override;

  std::string_view Dialect() const override { return "postgres"; }
  Status InTx(TxMode mode, const std::function<Status(Connection&)>& body) override;
  // Applies the migrations under an advisory lock, so processes that start
  // together migrate one after another.
  Status Migrate() override;

  // "host:port/dbname", the form used in messages.
  const std::string& Endpoint() const { return endpoint_; }

 private:
  class PostgresConnection;

  explicit PostgresDatabase(const PostgresOptions& options);

  Result<std::unique_ptr<PostgresConnection>> Connect();
  Result<std::unique_ptr<PostgresConnection>> Acquire();
  // Returns the connection to the pool, or closes it when it is broken or
  // still inside a transaction.
  void Release(std::unique_ptr<PostgresConnection> connection);

  const PostgresOptions options_;
  const std::string endpoint_;

  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<PostgresConnection>> idle_;  // GUARDED_BY(mutex_)
  int open_connections_ = 0;                               // GUARDED_BY(mutex_)
};

}  // namespace puddle::sql
