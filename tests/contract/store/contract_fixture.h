// StoreContractTest: one migrated, empty store per test, parameterised over
// the dialects ("sqlite", "postgres"), so every test body runs against both.
//
// SQLite stores live in a temporary directory. PostgreSQL stores are fresh
// databases on one throwaway server per test binary, started on first use and
// stopped after the last test. PostgreSQL tests skip only when the server
// binaries are not installed.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/clock.h"
#include "pg_server.h"
#include "storage/database.h"
#include "storage/store.h"

namespace puddle::testing {

#define ASSERT_OK(expression)                                            \
  do {                                                                   \
    const auto& assert_ok_result_ = (expression);                        \
    ASSERT_TRUE(assert_ok_result_) << assert_ok_result_.error().message; \
  } while (false)

// 2026-03-02T10:00:00Z, where every test's clock starts.
TimePoint TestStart();

// Returns the shared server, starting it on first use; nullptr when it could
// not start, with the reason in `error`.
PgServer* SharedPgServer(std::string& error);

class StoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  StoreContractTest() : clock_(TestStart()) {}
  ~StoreContractTest() override;

  void SetUp() override;

  bool IsPostgres() const { return GetParam() == "postgres"; }

  // Creates a new, empty database of this test's dialect and returns where it
  // is: a file path for SQLite, a database name for PostgreSQL.
  Result<std::string> NewDatabase();
  // Opens another handle on the database at `location`, as a second process would.
  Result<std::unique_ptr<sql::Database>> OpenDatabase(const std::string& location);
  // Number of migrations this dialect defines.
  size_t MigrationCount() const;

  FakeClock clock_;
  std::string location_;
  sql::Database* database_ = nullptr;  // owned by store_
  std::unique_ptr<Store> store_;

 private:
  std::string temp_dir_;
  PgServer* server_ = nullptr;
};

// Test names: "sqlite" and "postgres".
std::string DialectName(const ::testing::TestParamInfo<std::string>& info);

}  // namespace puddle::testing
