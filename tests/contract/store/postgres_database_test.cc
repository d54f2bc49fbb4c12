// PostgreSQL-only behaviour of PostgresDatabase: result types, error codes,
// lost connections and server restarts, against the throwaway server.
#include "storage/postgres/postgres_database.h"

#include <gmock/gmock.h>

#include <latch>
#include <thread>

#include "contract_fixture.h"

namespace puddle::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PostgresDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgServer::BinariesPresent()) {
      GTEST_SKIP() << "PostgreSQL 15 server binaries not found in " << PgServer::kBinDir
                   << "; install the postgresql-15 package (make test does)";
    }
    std::string error;
    server_ = SharedPgServer(error);
    ASSERT_NE(server_, nullptr) << "throwaway PostgreSQL did not start: " << error;
    static int counter = 0;
    dbname_ = "pg_only_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    ASSERT_OK(server_->CreateDatabase(dbname_));
    auto database = sql::PostgresDatabase::Open(server_->Options(dbname_));
    ASSERT_OK(database);
    database_ = std::move(*database);
  }

  std::string Endpoint() const {
    return "127.0.0.1:" + std::to_string(server_->port()) + "/" + dbname_;
  }

  Result<std::vector<sql::Row>> QueryOnce(std::string_view sql, const sql::Params& params = {}) {
    std::vector<sql::Row> rows;
    auto status = database_->InTx(sql::TxMode::kWrite, [&](sql::Connection& connection) -> Status {
      PUDDLE_ASSIGN_OR_RETURN(rows, connection.Query(sql, params));
      return Ok();
    });
    if (!status) return tl::unexpected(status.error());
    return rows;
  }

  PgServer* server_ = nullptr;
  std::string dbname_;
  std::unique_ptr<sql::PostgresDatabase> database_;
};

TEST_F(PostgresDatabaseTest, ResultTypesFollowColumnTypes) {
  auto rows = QueryOnce(
      "SELECT 1::int2, 2::int4, 9007199254740993::int8, 1.5::float4, 2.5::float8, "
      "3.25::numeric, 'text', NULL::text, true, false");
  ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 1u);
  const sql::Row& row = (*rows)[0];
  // Text() renders an int64 without and a double with decimals, so it shows the stored type.
  EXPECT_EQ(row.Text(0), "1");
  EXPECT_EQ(row.Text(1), "2");
  EXPECT_EQ(row.Int(2), 9007199254740993);
  EXPECT_EQ(row.Text(3), "1.500000");
  EXPECT_EQ(row.Real(4), 2.5);
  EXPECT_EQ(row.Text(5), "3.250000");
  EXPECT_EQ(row.Text(6), "text");
  EXPECT_TRUE(row.IsNull(7));
  EXPECT_TRUE(row.Bool(8));
  EXPECT_FALSE(row.Bool(9));
}

TEST_F(PostgresDatabaseTest, ParametersBindAsTextWithTypes) {
  auto rows = QueryOnce("SELECT $1 + 1, $2 * 2, $3 || '!', $4::text IS NULL, $5",
                        {int64_t{9007199254740992}, 0.1, std::string("hi"), sql::Null(), 1e-300});
  ASSERT_OK(rows);
  ASSERT_EQ(rows->size(), 1u);
  const sql::Row& row = (*rows)[0];
  EXPECT_EQ(row.Int(0), 9007199254740993);
  EXPECT_EQ(row.Real(1), 0.2);
  EXPECT_EQ(row.Text(2), "hi!");
  EXPECT_TRUE(row.Bool(3));
  EXPECT_EQ(row.Real(4), 1e-300);

  // A parameter the SQL does not use is accepted, as SQLite accepts it.
  auto unused = QueryOnce("SELECT 1", {std::string("unused"), int64_t{2}});
  ASSERT_OK(unused);

  auto nul = QueryOnce("SELECT $1", {std::string("a\0b", 3)});
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().code, ErrorCode::kValidationFailed);
}

TEST_F(PostgresDatabaseTest, ErrorsMapToCodes) {
  ASSERT_OK(QueryOnce("CREATE TABLE names (name TEXT PRIMARY KEY)"));
  ASSERT_OK(QueryOnce("INSERT INTO names VALUES ($1)", {std::string("alice")}));

  auto duplicate = QueryOnce("INSERT INTO names VALUES ($1)", {std::string("alice")});
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_THAT(duplicate.error().message, HasSubstr(Endpoint()));

  auto syntax = QueryOnce("SELEC 1");
  ASSERT_FALSE(syntax);
  EXPECT_EQ(syntax.error().code, ErrorCode::kInternal);
  EXPECT_THAT(syntax.error().message, HasSubstr("42601"));
  EXPECT_THAT(syntax.error().message, HasSubstr("SELEC 1"));
}

TEST_F(PostgresDatabaseTest, IgnoredStatementErrorFailsCommit) {
  ASSERT_OK(QueryOnce("CREATE TABLE names (name TEXT PRIMARY KEY)"));
  auto committed = database_->InTx(sql::TxMode::kWrite, [](sql::Connection& connection) {
    (void)connection.Execute("INSERT INTO names VALUES ('a')", {});
    (void)connection.Execute("INSERT INTO names VALUES ('a')", {});
    return Ok();
  });
  ASSERT_FALSE(committed) << "PostgreSQL rolled back, so InTx must not report success";
  EXPECT_THAT(committed.error().message, HasSubstr("rolled back"));
  auto rows = QueryOnce("SELECT COUNT(*) FROM names");
  ASSERT_OK(rows);
  EXPECT_EQ((*rows)[0].Int(0), 0);
}

TEST_F(PostgresDatabaseTest, ReadTransactionCannotWrite) {
  auto written = database_->InTx(sql::TxMode::kRead, [](sql::Connection& connection) {
    return connection.ExecuteScript("CREATE TABLE nope (a INTEGER)");
  });
  ASSERT_FALSE(written);
  EXPECT_THAT(written.error().message, HasSubstr("25006"));
}

TEST_F(PostgresDatabaseTest, WrongPasswordIsUnavailableAndNotEchoed) {
  sql::PostgresOptions options = server_->Options(dbname_);
  options.password = "wrong-password-4f9a";
  auto opened = sql::PostgresDatabase::Open(options);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(opened.error().message, HasSubstr(Endpoint()));
  EXPECT_THAT(opened.error().message, Not(HasSubstr("wrong-password-4f9a")));
}

TEST_F(PostgresDatabaseTest, InvalidOptionsAreRejected) {
  sql::PostgresOptions options = server_->Options(dbname_);
  options.pool_size = 0;
  auto opened = sql::PostgresDatabase::Open(options);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(opened.error().field, "pool_size");

  options = server_->Options(dbname_);
  options.port = 70000;
  opened = sql::PostgresDatabase::Open(options);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().field, "port");
}

TEST_F(PostgresDatabaseTest, BusyPoolTimesOut) {
  sql::PostgresOptions options = server_->Options(dbname_);
  options.pool_size = 1;
  options.acquire_timeout_seconds = 1;
  auto opened = sql::PostgresDatabase::Open(options);
  ASSERT_OK(opened);
  auto& database = **opened;

  std::latch holding(1);
  std::latch release(1);
  std::thread holder([&] {
    (void)database.InTx(sql::TxMode::kRead, [&](sql::Connection&) {
      holding.count_down();
      release.wait();
      return Ok();
    });
  });
  holding.wait();
  auto waited = database.InTx(sql::TxMode::kRead, [](sql::Connection&) { return Ok(); });
  release.count_down();
  holder.join();
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(waited.error().message, HasSubstr("busy"));

  ASSERT_OK(database.InTx(sql::TxMode::kRead, [](sql::Connection&) { return Ok(); }));
}

TEST_F(PostgresDatabaseTest, ConnectionKilledMidTransactionIsUnavailable) {
  auto killer = sql::PostgresDatabase::Open(server_->Options(dbname_));
  ASSERT_OK(killer);

  auto lost = database_->InTx(sql::TxMode::kWrite, [&](sql::Connection& connection) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto rows, connection.Query("SELECT pg_backend_pid()", {}));
    int64_t pid = rows.at(0).Int(0);
    PUDDLE_RETURN_IF_ERROR((*killer)->InTx(sql::TxMode::kWrite, [&](sql::Connection& other) {
      return other.Query("SELECT pg_terminate_backend($1::integer)", {pid}).map([](auto&&) {});
    }));
    return connection.Query("SELECT 1", {}).map([](auto&&) {});
  });
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(lost.error().message, HasSubstr(Endpoint()));

  auto next = QueryOnce("SELECT 1");
  ASSERT_OK(next);
}

TEST_F(PostgresDatabaseTest, ServerRestartThenNextTransactionSucceeds) {
  sql::PostgresOptions options = server_->Options(dbname_);
  options.pool_size = 4;
  auto opened = sql::PostgresDatabase::Open(options);
  ASSERT_OK(opened);
  FakeClock clock(TestStart());
  Store store(std::move(*opened), clock);
  ASSERT_OK(store.Migrate());
  ASSERT_OK(store.Write([](Tx& tx) {
    User user;
    user.id = "user-a";
    user.username = "alice";
    user.created_at = TestStart();
    return tx.InsertUser(user).map([](const User&) {});
  }));

  // Four transactions at once fill the pool with four connections, all of
  // which the restart kills.
  std::latch inside(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      (void)store.Read([&](Tx&) {
        inside.arrive_and_wait();
        return Ok();
      });
    });
  }
  for (auto& thread : threads) thread.join();

  ASSERT_OK(server_->Restart());

  auto written = store.Write([](Tx& tx) {
    User user;
    user.id = "user-b";
    user.username = "bob";
    user.created_at = TestStart();
    return tx.InsertUser(user).map([](const User&) {});
  });
  ASSERT_OK(written);
  for (int i = 0; i < 6; ++i) {
    auto read = store.ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUser("user-a"); });
    ASSERT_OK(read);
    EXPECT_TRUE(read->has_value()) << "read " << i;
  }
}

}  // namespace
}  // namespace puddle::testing
