#include "contract_fixture.h"

#include <stdlib.h>

#include <atomic>
#include <filesystem>

#include "common/crypto.h"
#include "storage/postgres/postgres_database.h"
#include "storage/postgres/postgres_migrations.h"
#include "storage/sqlite/sqlite_database.h"
#include "storage/sqlite/sqlite_migrations.h"

namespace puddle::testing {

namespace {

std::unique_ptr<PgServer>& SharedServerSlot() {
  static std::unique_ptr<PgServer> server;
  return server;
}

// Stops the shared server after the last test, also when tests failed.
class PgServerEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { SharedServerSlot().reset(); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PgServerEnvironment);

}  // namespace

TimePoint TestStart() { return *ParseTime("2026-03-02T10:00:00Z"); }

PgServer* SharedPgServer(std::string& error) {
  static std::string start_error;
  auto& server = SharedServerSlot();
  if (!server && start_error.empty()) {
    auto started = PgServer::Start();
    if (started) {
      server = std::move(*started);
    } else {
      start_error = started.error().message;
    }
  }
  error = start_error;
  return server.get();
}

std::string DialectName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

StoreContractTest::~StoreContractTest() {
  store_.reset();
  if (!temp_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

void StoreContractTest::SetUp() {
  ASSERT_TRUE(InitCrypto());
  if (IsPostgres()) {
    if (!PgServer::BinariesPresent()) {
      GTEST_SKIP() << "PostgreSQL 15 server binaries not found in " << PgServer::kBinDir
                   << "; install the postgresql-15 package (make test does) to run the "
                      "PostgreSQL half of this suite";
    }
    std::string error;
    server_ = SharedPgServer(error);
    ASSERT_NE(server_, nullptr) << "throwaway PostgreSQL did not start: " << error;
  } else {
    std::string pattern = (std::filesystem::temp_directory_path() / "puddle-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern << " failed";
    temp_dir_ = pattern;
  }

  auto location = NewDatabase();
  ASSERT_TRUE(location) << location.error().message;
  location_ = *location;
  auto database = OpenDatabase(location_);
  ASSERT_TRUE(database) << database.error().message;
  database_ = database->get();
  store_ = std::make_unique<Store>(std::move(*database), clock_);
  ASSERT_OK(store_->Migrate());
}

Result<std::string> StoreContractTest::NewDatabase() {
  static std::atomic<int> counter{0};
  int number = ++counter;
  if (!IsPostgres()) return temp_dir_ + "/store" + std::to_string(number) + ".db";
  std::string name = "contract_" + std::to_string(getpid()) + "_" + std::to_string(number);
  PUDDLE_RETURN_IF_ERROR(server_->CreateDatabase(name));
  return name;
}

Result<std::unique_ptr<sql::Database>> StoreContractTest::OpenDatabase(
    const std::string& location) {
  if (IsPostgres()) {
    PUDDLE_ASSIGN_OR_RETURN(auto database, sql::PostgresDatabase::Open(server_->Options(location)));
    return std::unique_ptr<sql::Database>(std::move(database));
  }
  PUDDLE_ASSIGN_OR_RETURN(auto database, sql::SqliteDatabase::Open(location));
  return std::unique_ptr<sql::Database>(std::move(database));
}

size_t StoreContractTest::MigrationCount() const {
  return IsPostgres() ? sql::PostgresMigrations().size() : sql::SqliteMigrations().size();
}

}  // namespace puddle::testing
