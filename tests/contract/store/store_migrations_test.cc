// Schema migrations on every dialect: idempotent, safe to run from two
// processes at once, and refused when the database is newer than the binary.
#include <gmock/gmock.h>

#include <thread>

#include "contract_fixture.h"

namespace puddle::testing {
namespace {

using StoreMigrationsTest = StoreContractTest;

Result<std::vector<int64_t>> AppliedVersions(sql::Database& database) {
  std::vector<int64_t> versions;
  auto read = database.InTx(sql::TxMode::kRead, [&](sql::Connection& connection) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(
        auto rows, connection.Query("SELECT version FROM schema_migrations ORDER BY version", {}));
    for (const auto& row : rows) versions.push_back(row.Int(0));
    return Ok();
  });
  if (!read) return tl::unexpected(read.error());
  return versions;
}

std::vector<int64_t> OneToN(size_t n) {
  std::vector<int64_t> versions;
  for (size_t i = 1; i <= n; ++i) versions.push_back(static_cast<int64_t>(i));
  return versions;
}

Status InsertAlice(Store& store) {
  return store.Write([](Tx& tx) {
    User user;
    user.id = "user-a";
    user.username = "alice";
    user.created_at = TestStart();
    return tx.InsertUser(user).map([](const User&) {});
  });
}

TEST_P(StoreMigrationsTest, MigrateAgainChangesNothing) {
  ASSERT_OK(InsertAlice(*store_));

  ASSERT_OK(store_->Migrate());

  auto versions = AppliedVersions(*database_);
  ASSERT_OK(versions);
  EXPECT_EQ(*versions, OneToN(MigrationCount()));
  auto user = store_->ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUser("user-a"); });
  ASSERT_OK(user);
  EXPECT_TRUE(user->has_value());
}

TEST_P(StoreMigrationsTest, MigrateRejectsNewerDatabase) {
  ASSERT_OK(InsertAlice(*store_));
  ASSERT_OK(database_->InTx(sql::TxMode::kWrite, [](sql::Connection& connection) {
    return connection
        .Execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                 {int64_t{999}, std::string("from a newer puddle")})
        .map([](int64_t) {});
  }));

  auto refused = store_->Migrate();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(refused.error().message, ::testing::HasSubstr("999"));

  // A second process is refused the same way, and nothing was changed.
  auto other = OpenDatabase(location_);
  ASSERT_OK(other);
  auto refused_again = (*other)->Migrate();
  ASSERT_FALSE(refused_again);
  EXPECT_EQ(refused_again.error().code, ErrorCode::kUnavailable);
  auto versions = AppliedVersions(*database_);
  ASSERT_OK(versions);
  std::vector<int64_t> expected = OneToN(MigrationCount());
  expected.push_back(999);
  EXPECT_EQ(*versions, expected);
  auto user = store_->ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUser("user-a"); });
  ASSERT_OK(user);
  EXPECT_TRUE(user->has_value());
}

TEST_P(StoreMigrationsTest, ConcurrentMigrationsOfNewDatabase) {
  auto location = NewDatabase();
  ASSERT_OK(location);
  auto first = OpenDatabase(*location);
  ASSERT_OK(first);
  auto second = OpenDatabase(*location);
  ASSERT_OK(second);

  Status first_result, second_result;
  std::thread other([&] { second_result = (*second)->Migrate(); });
  first_result = (*first)->Migrate();
  other.join();
  ASSERT_OK(first_result);
  ASSERT_OK(second_result);

  auto versions = AppliedVersions(**first);
  ASSERT_OK(versions);
  EXPECT_EQ(*versions, OneToN(MigrationCount()));
}

INSTANTIATE_TEST_SUITE_P(Dialects, StoreMigrationsTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

}  // namespace
}  // namespace puddle::testing
