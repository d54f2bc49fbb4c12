// PgServer: a throwaway PostgreSQL 15 server on 127.0.0.1 for tests, started
// with tests/support/pg_throwaway.sh in a temporary directory and stopped by
// its pid when the object is destroyed.
//
// The script also starts a watchdog that stops the server once this test
// process exits, so a crashed test leaves nothing running. Not thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "storage/postgres/postgres_database.h"

namespace puddle::testing {

class PgServer {
 public:
  // Directory of initdb, pg_ctl and postgres from Debian's postgresql-15.
  static constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

  // True when the server binaries are installed.
  static bool BinariesPresent();

  // Starts a server on a free loopback port, trying up to three ports.
  static Result<std::unique_ptr<PgServer>> Start();

  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Restarts the server with a fast shutdown, closing every client connection.
  Status Restart();

  // Creates an empty database owned by the superuser.
  Status CreateDatabase(const std::string& name);

  // Options that reach database `dbname` as the superuser, without TLS.
  sql::PostgresOptions Options(const std::string& dbname) const;

  int port() const { return port_; }

 private:
  PgServer() = default;
  void Stop();

  int port_ = 0;
  std::string password_;
  std::string dir_;
  int server_pid_ = 0;
  int watchdog_pid_ = 0;
};

}  // namespace puddle::testing
