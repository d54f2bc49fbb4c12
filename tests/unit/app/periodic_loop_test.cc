#include "app/periodic_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "storage/sqlite/sqlite_database.h"

namespace puddle {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Polls `done` every millisecond until it returns true or 10 s pass.
bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

class PeriodicLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "puddle-app-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto database = sql::SqliteDatabase::Open(dir_ + "/puddle.db");
    ASSERT_TRUE(database) << database.error().message;
    store_ = std::make_unique<Store>(std::move(*database), clock_);
    auto migrated = store_->Migrate();
    ASSERT_TRUE(migrated) << migrated.error().message;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  PeriodicLoopOptions Leased(const std::string& holder) {
    PeriodicLoopOptions options;
    options.name = "reconcile";
    options.interval = milliseconds(5);
    options.lease_store = store_.get();
    options.holder = holder;
    options.lease_ttl = seconds(30);
    return options;
  }

  std::string dir_;
  SystemClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(PeriodicLoopTest, SecondHolderWaitsForRelease) {
  std::atomic<int> runs_a{0};
  std::atomic<int> runs_b{0};
  auto loop_a = std::make_unique<PeriodicLoop>(Leased("process-a"), [&] { ++runs_a; });
  ASSERT_TRUE(WaitFor([&] { return runs_a >= 3; }));

  PeriodicLoop loop_b(Leased("process-b"), [&] { ++runs_b; });
  int seen = runs_a;
  ASSERT_TRUE(WaitFor([&] { return runs_a >= seen + 20; })) << "the holder stopped running";
  EXPECT_EQ(runs_b, 0) << "both processes ran the loop";

  // Stopping releases the lease, so the other process takes over at once,
  // well before the 30 s expiry.
  loop_a->Stop();
  int final_a = runs_a;
  ASSERT_TRUE(WaitFor([&] { return runs_b >= 3; })) << "the lease did not pass on";
  EXPECT_EQ(runs_a, final_a) << "a stopped loop ran";
}

TEST_F(PeriodicLoopTest, WithoutLeaseStoreEveryLoopRuns) {
  std::atomic<int> runs_a{0};
  std::atomic<int> runs_b{0};
  PeriodicLoopOptions options = Leased("process-a");
  options.lease_store = nullptr;
  PeriodicLoop loop_a(options, [&] { ++runs_a; });
  PeriodicLoop loop_b(options, [&] { ++runs_b; });
  EXPECT_TRUE(WaitFor([&] { return runs_a >= 3; }));
  EXPECT_TRUE(WaitFor([&] { return runs_b >= 3; }));
}

TEST_F(PeriodicLoopTest, StopWakesSleepingLoop) {
  std::atomic<int> runs{0};
  PeriodicLoopOptions options = Leased("process-a");
  options.interval = std::chrono::hours(1);
  PeriodicLoop loop(options, [&] { ++runs; });
  ASSERT_TRUE(WaitFor([&] { return runs == 1; }));

  auto started = std::chrono::steady_clock::now();
  loop.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(5));
  EXPECT_EQ(runs, 1);

  // Stop released the lease: another holder takes it at once.
  auto taken = store_->WriteValue<bool>(
      [](Tx& tx) { return tx.TryAcquireLease("reconcile", "process-b", seconds(30)); });
  ASSERT_TRUE(taken) << taken.error().message;
  EXPECT_TRUE(*taken);
}

}  // namespace
}  // namespace puddle
