// What keeps several processes on one store from stepping on each other:
// leases, which keep each periodic loop in one process, and the system row
// lock of read-check-write transactions. Every dialect runs every test; on
// SQLite they pass because write transactions run one at a time.
#include <gmock/gmock.h>

#include <atomic>
#include <barrier>
#include <mutex>
#include <thread>

#include "contract_fixture.h"

namespace puddle::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using StoreLeasesTest = StoreContractTest;

constexpr milliseconds kTtl = seconds(30);

Result<bool> Acquire(Store& store, const std::string& holder, milliseconds ttl = kTtl) {
  return store.WriteValue<bool>(
      [&](Tx& tx) { return tx.TryAcquireLease("reconcile", holder, ttl); });
}

Status Release(Store& store, const std::string& holder) {
  return store.Write([&](Tx& tx) { return tx.ReleaseLease("reconcile", holder); });
}

// Succeeds when Acquire returns `expected` without an error.
::testing::AssertionResult Acquires(Store& store, const std::string& holder, bool expected) {
  auto held = Acquire(store, holder);
  if (!held) return ::testing::AssertionFailure() << holder << ": " << held.error().message;
  if (*held != expected) {
    return ::testing::AssertionFailure()
           << holder << (expected ? " did not get the lease" : " got the lease");
  }
  return ::testing::AssertionSuccess();
}

TEST_P(StoreLeasesTest, HolderKeepsLeaseUntilExpiry) {
  EXPECT_TRUE(Acquires(*store_, "process-a", true));
  EXPECT_TRUE(Acquires(*store_, "process-b", false));
  EXPECT_TRUE(Acquires(*store_, "process-a", true)) << "the holder renews its lease";

  // The renewal at TestStart() runs until TestStart() + 30 s.
  clock_.Advance(kTtl - milliseconds(1));
  EXPECT_TRUE(Acquires(*store_, "process-b", false));
  clock_.Advance(milliseconds(1));
  EXPECT_TRUE(Acquires(*store_, "process-b", true)) << "an expired lease passes to another holder";
  EXPECT_TRUE(Acquires(*store_, "process-a", false));
}

TEST_P(StoreLeasesTest, RenewalPostponesExpiry) {
  EXPECT_TRUE(Acquires(*store_, "process-a", true));
  clock_.Advance(seconds(20));
  EXPECT_TRUE(Acquires(*store_, "process-a", true));
  clock_.Advance(seconds(20));
  EXPECT_TRUE(Acquires(*store_, "process-b", false)) << "the renewal 20 s in holds until 50 s";
}

TEST_P(StoreLeasesTest, ReleaseFreesLeaseAtOnce) {
  EXPECT_TRUE(Acquires(*store_, "process-a", true));
  ASSERT_OK(Release(*store_, "process-b"));
  EXPECT_TRUE(Acquires(*store_, "process-b", false)) << "only the holder may release its lease";

  ASSERT_OK(Release(*store_, "process-a"));
  EXPECT_TRUE(Acquires(*store_, "process-b", true));
}

TEST_P(StoreLeasesTest, LeasesWithOtherNamesAreIndependent) {
  EXPECT_TRUE(Acquires(*store_, "process-a", true));
  auto reaper = store_->WriteValue<bool>(
      [](Tx& tx) { return tx.TryAcquireLease("reaper", "process-b", kTtl); });
  ASSERT_OK(reaper);
  EXPECT_TRUE(*reaper);
}

// Holders in separate connections pools, as separate processes have, race for
// the lease in rounds; after each round the clock passes the lease's expiry.
// Each round must have exactly one winner.
TEST_P(StoreLeasesTest, ConcurrentHoldersNeverShareLease) {
  constexpr int kHolders = 4;
  constexpr int kRounds = 25;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kHolders; ++i) {
    auto database = OpenDatabase(location_);
    ASSERT_OK(database);
    stores.push_back(std::make_unique<Store>(std::move(*database), clock_));
  }

  std::mutex mutex;
  std::vector<int> winners(kRounds, 0);
  std::vector<std::string> errors;
  // The last thread to arrive moves the clock past the round's lease.
  std::barrier round_end(kHolders, [&]() noexcept { clock_.Advance(kTtl); });
  std::vector<std::thread> threads;
  for (int h = 0; h < kHolders; ++h) {
    threads.emplace_back([&, h] {
      std::string holder = "process-" + std::to_string(h);
      for (int round = 0; round < kRounds; ++round) {
        auto held = Acquire(*stores[h], holder);
        {
          std::lock_guard lock(mutex);
          if (!held) errors.push_back(held.error().message);
          if (held && *held) ++winners[round];
        }
        round_end.arrive_and_wait();
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_THAT(errors, ::testing::IsEmpty());
  for (int round = 0; round < kRounds; ++round) {
    EXPECT_EQ(winners[round], 1) << "round " << round;
  }
}

class StoreRowLockTest : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK(store_->Write([](Tx& tx) -> Status {
      User user;
      user.id = "user-a";
      user.username = "alice";
      user.created_at = TestStart();
      PUDDLE_RETURN_IF_ERROR(tx.InsertUser(user));
      System system;
      system.id = "s01";
      system.name = "lab";
      system.owner_id = "user-a";
      system.product = "jupyter";
      system.version = "6.4";
      system.system_type = "small";
      system.image_id = "jupyter-6-4";
      system.status = SystemStatus::kRunning;
      system.idle_timeout_minutes = 0;
      system.provider = "fake";
      system.created_at = TestStart();
      system.updated_at = TestStart();
      return tx.InsertSystem(system);
    }));
  }

  // Reads the system under its row lock and writes it back with
  // idle_timeout_minutes + 1, as a read-check-write does. Returns the value read.
  Result<int64_t> Increment(Store& store) {
    return store.WriteValue<int64_t>([](Tx& tx) -> Result<int64_t> {
      PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystemForUpdate("s01"));
      if (!system) return InternalError("s01 not found");
      int64_t seen = system->idle_timeout_minutes;
      system->idle_timeout_minutes = seen + 1;
      PUDDLE_RETURN_IF_ERROR(tx.UpdateSystem(*system));
      return seen;
    });
  }

  // Number of backends of this test's PostgreSQL database waiting for a lock.
  // Each call is a new transaction, so pg_stat_activity is read afresh.
  Result<int64_t> LockWaiters() {
    int64_t waiting = 0;
    auto read = database_->InTx(sql::TxMode::kRead, [&](sql::Connection& connection) -> Status {
      PUDDLE_ASSIGN_OR_RETURN(
          auto rows, connection.Query("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = "
                                      "current_database() AND wait_event_type = 'Lock'",
                                      {}));
      waiting = rows.at(0).Int(0);
      return Ok();
    });
    if (!read) return tl::unexpected(read.error());
    return waiting;
  }
};

TEST_P(StoreRowLockTest, GetSystemForUpdateReadsSystem) {
  auto read = store_->WriteValue<std::optional<System>>(
      [](Tx& tx) { return tx.GetSystemForUpdate("s01"); });
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((**read).name, "lab");
  EXPECT_EQ((**read).owner_username, "alice");

  auto missing = store_->WriteValue<std::optional<System>>(
      [](Tx& tx) { return tx.GetSystemForUpdate("absent"); });
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());
}

// The second transaction reads the system while the first holds its lock: it
// must wait and then see the first one's write, not the value before it.
TEST_P(StoreRowLockTest, SecondReaderSeesFirstWrite) {
  if (!IsPostgres()) GTEST_SKIP() << "SQLite write transactions cannot overlap at all";
  auto second_store = OpenDatabase(location_);
  ASSERT_OK(second_store);
  Store second(std::move(*second_store), clock_);

  std::atomic<int64_t> second_saw{-1};
  std::thread second_thread;
  auto first = store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystemForUpdate("s01"));
    second_thread = std::thread([&] {
      auto seen = Increment(second);
      second_saw = seen ? *seen : -2;
    });
    // Commit only once the second transaction waits for the row lock.
    auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (true) {
      PUDDLE_ASSIGN_OR_RETURN(int64_t waiting, LockWaiters());
      if (waiting > 0) break;
      if (std::chrono::steady_clock::now() > deadline) {
        return InternalError("the second transaction never waited for the row lock");
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    system->idle_timeout_minutes = 10;
    return tx.UpdateSystem(*system);
  });
  second_thread.join();
  ASSERT_OK(first);

  EXPECT_EQ(second_saw.load(), 10) << "the second transaction read past the first one's lock";
  auto final_value = store_->ReadValue<std::optional<System>>(
      [](Tx& tx) { return tx.GetSystem("s01"); });
  ASSERT_OK(final_value);
  EXPECT_EQ((**final_value).idle_timeout_minutes, 11);
}

// Concurrent read-increment-write transactions from separate pools lose no
// increment.
TEST_P(StoreRowLockTest, ConcurrentIncrementsLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 25;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kThreads; ++i) {
    auto database = OpenDatabase(location_);
    ASSERT_OK(database);
    stores.push_back(std::make_unique<Store>(std::move(*database), clock_));
  }
  std::mutex mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIncrements; ++i) {
        auto seen = Increment(*stores[t]);
        if (!seen) {
          std::lock_guard lock(mutex);
          errors.push_back(seen.error().message);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_THAT(errors, ::testing::IsEmpty());
  auto final_value = store_->ReadValue<std::optional<System>>(
      [](Tx& tx) { return tx.GetSystem("s01"); });
  ASSERT_OK(final_value);
  EXPECT_EQ((**final_value).idle_timeout_minutes, kThreads * kIncrements);
}

INSTANTIATE_TEST_SUITE_P(Dialects, StoreLeasesTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);
INSTANTIATE_TEST_SUITE_P(Dialects, StoreRowLockTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

}  // namespace
}  // namespace puddle::testing
