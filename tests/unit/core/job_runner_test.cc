// JobRunner over a real SQLite store: atomic claims, retries with backoff,
// permanent failures, exhausted attempts and the reaper.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/ids.h"
#include "core_fixture.h"
#include "storage/sqlite/sqlite_database.h"

namespace puddle::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kWorkKind = "test.work";

// Polls `condition` until it is true or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return condition();
}

// A database that can be switched off, standing in for a PostgreSQL server
// that restarts: while down, every transaction fails as unavailable.
class SwitchableDatabase final : public sql::Database {
 public:
  explicit SwitchableDatabase(std::unique_ptr<sql::Database> inner) : inner_(std::move(inner)) {}

  std::string_view Dialect() const override { return inner_->Dialect(); }
  Status InTx(sql::TxMode mode, const std::function<Status(sql::Connection&)>& body) override {
    if (down_) {
      ++refused_;
      return MakeError(ErrorCode::kUnavailable, "database is down for the test");
    }
    return inner_->InTx(mode, body);
  }
  Status Migrate() override { return inner_->Migrate(); }

  void SetDown(bool down) { down_ = down; }
  int refused() const { return refused_; }

 private:
  std::unique_ptr<sql::Database> inner_;
  std::atomic<bool> down_{false};
  std::atomic<int> refused_{0};
};

class JobRunnerTest : public CoreTest {
 protected:
  // Inserts a system row with no job of its own.
  std::string InsertBareSystem(const std::string& name) {
    System system;
    system.id = NewId(12);
    system.name = name;
    system.owner_id = alice_.user_id;
    system.product = kProduct;
    system.version = kVersion;
    system.system_type = kSystemType;
    system.image_id = kImage;
    system.provider = "fake";
    system.created_at = system.updated_at = clock_.Now();
    auto inserted = store_->Write([&](Tx& tx) { return tx.InsertSystem(system); });
    EXPECT_TRUE(inserted) << inserted.error().message;
    return system.id;
  }

  // Inserts a queued job of `kind` and its operation, as a service would.
  Job InsertJob(const std::string& system_id, const std::string& kind, int max_attempts = 5) {
    Operation operation;
    operation.id = NewId(20);
    operation.system_id = system_id;
    operation.action = OperationAction::kStart;
    operation.created_at = operation.updated_at = clock_.Now();
    Job job;
    job.id = NewId(20);
    job.kind = kind;
    job.system_id = system_id;
    job.operation_id = operation.id;
    job.max_attempts = max_attempts;
    job.run_after = job.created_at = job.updated_at = clock_.Now();
    auto inserted = store_->Write([&](Tx& tx) -> Status {
      PUDDLE_RETURN_IF_ERROR(tx.InsertOperation(operation));
      return tx.InsertJob(job);
    });
    EXPECT_TRUE(inserted) << inserted.error().message;
    return job;
  }

  Operation GetOperation(const std::string& id) {
    auto found =
        store_->ReadValue<std::optional<Operation>>([&](Tx& tx) { return tx.GetOperation(id); });
    if (!found || !*found) {
      ADD_FAILURE() << "operation " << id << " not found";
      return Operation();
    }
    return **found;
  }

  // Claims like a worker that then dies without finishing.
  std::optional<Job> ClaimAsDeadWorker() {
    auto claimed = store_->WriteValue<std::optional<Job>>(
        [](Tx& tx) { return tx.ClaimJob("dead-worker/0"); });
    EXPECT_TRUE(claimed) << claimed.error().message;
    return claimed ? *claimed : std::nullopt;
  }

  std::unique_ptr<JobRunner> MakeRunner(milliseconds base, milliseconds cap) {
    JobRunnerOptions options;
    options.workers = 2;
    options.process_id = "job-runner-test";
    options.backoff_base = base;
    options.backoff_cap = cap;
    options.silent_limit = seconds(60);
    return std::make_unique<JobRunner>(*store_, dispatcher_, options);
  }
};

TEST_F(JobRunnerTest, WorkersCarryOnAfterStoreOutage) {
  // A second store on the same SQLite file, whose database the test switches off.
  auto opened = sql::SqliteDatabase::Open(dir_.path() + "/puddle.db");
  ASSERT_TRUE(opened) << opened.error().message;
  auto switchable = std::make_unique<SwitchableDatabase>(std::move(*opened));
  SwitchableDatabase* database = switchable.get();
  Store flaky_store(std::move(switchable), clock_);
  EmbeddedDispatcher dispatcher;
  JobRunnerOptions options;
  options.workers = 1;
  options.process_id = "outage-test";
  options.poll_interval = milliseconds(5);
  options.heartbeat_interval = milliseconds(50);
  options.backoff_base = milliseconds(5);
  options.backoff_cap = milliseconds(20);
  JobRunner runner(flaky_store, dispatcher, options);
  std::atomic<int> ran{0};
  runner.Register(
      kWorkKind, [&](const Job&) -> Result<JobOutcome> {
        ++ran;
        return JobOutcome::kSucceeded;
      },
      nullptr);

  database->SetDown(true);
  runner.Start();
  Job job = InsertJob(InsertBareSystem("outage"), kWorkKind);
  ASSERT_TRUE(WaitFor([&] { return database->refused() >= 3; }, seconds(10)))
      << "the worker stopped trying while the store was down";
  EXPECT_EQ(ran.load(), 0);

  database->SetDown(false);
  dispatcher.Publish(job.id);
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 1; }, seconds(10)))
      << "the worker did not pick up the job once the store was back";
  runner.Stop();
  EXPECT_EQ(GetJob(job.id).state, JobState::kSucceeded);
}

TEST_F(JobRunnerTest, BackoffDoublesUpToCap) {
  auto runner = MakeRunner(milliseconds(1000), milliseconds(5000));
  EXPECT_EQ(runner->BackoffFor(1), milliseconds(1000));
  EXPECT_EQ(runner->BackoffFor(2), milliseconds(2000));
  EXPECT_EQ(runner->BackoffFor(3), milliseconds(4000));
  EXPECT_EQ(runner->BackoffFor(4), milliseconds(5000));
  EXPECT_EQ(runner->BackoffFor(60), milliseconds(5000));
}

// Two threads drain twenty jobs over four systems: each job runs exactly
// once and no system ever has two jobs running at the same time.
TEST_F(JobRunnerTest, ClaimIsAtomicAndOnePerSystem) {
  constexpr int kSystems = 4;
  constexpr int kJobsPerSystem = 5;
  std::set<std::string> job_ids;
  for (int s = 0; s < kSystems; ++s) {
    std::string system_id = InsertBareSystem("sys-" + std::to_string(s));
    for (int j = 0; j < kJobsPerSystem; ++j) job_ids.insert(InsertJob(system_id, kWorkKind).id);
  }

  std::mutex mutex;
  std::map<std::string, int> runs;       // job id -> times run
  std::map<std::string, int> in_flight;  // system id -> jobs running now
  int overlaps = 0;
  std::atomic<int> finished{0};
  auto runner = MakeRunner(milliseconds(1000), milliseconds(5000));
  runner->Register(
      kWorkKind,
      [&](const Job& job) -> Result<JobOutcome> {
        {
          std::lock_guard lock(mutex);
          ++runs[job.id];
          if (++in_flight[job.system_id] > 1) ++overlaps;
        }
        // Holds the job briefly so the other thread's claims race with it.
        std::this_thread::sleep_for(milliseconds(2));
        {
          std::lock_guard lock(mutex);
          --in_flight[job.system_id];
        }
        ++finished;
        return JobOutcome::kSucceeded;
      },
      nullptr);

  auto drain = [&](const std::string& worker) {
    auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (finished.load() < kSystems * kJobsPerSystem &&
           std::chrono::steady_clock::now() < deadline) {
      if (!runner->RunOne(worker)) std::this_thread::yield();
    }
  };
  std::thread first(drain, "worker-a");
  std::thread second(drain, "worker-b");
  first.join();
  second.join();

  EXPECT_EQ(overlaps, 0);
  ASSERT_EQ(runs.size(), job_ids.size());
  for (const auto& id : job_ids) {
    EXPECT_EQ(runs[id], 1) << "job " << id;
    Job job = GetJob(id);
    EXPECT_EQ(job.state, JobState::kSucceeded);
    EXPECT_EQ(job.attempt, 1);
    EXPECT_EQ(GetOperation(job.operation_id).state, OperationState::kSucceeded);
  }
}

TEST_F(JobRunnerTest, RunningJobBlocksItsSystemOnly) {
  std::string busy = InsertBareSystem("busy");
  std::string idle = InsertBareSystem("idle");
  Job first = InsertJob(busy, kWorkKind);
  clock_.Advance(milliseconds(1));
  Job second = InsertJob(busy, kWorkKind);
  clock_.Advance(milliseconds(1));
  Job other = InsertJob(idle, kWorkKind);

  auto claimed = ClaimAsDeadWorker();
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, first.id);
  claimed = ClaimAsDeadWorker();
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, other.id);
  EXPECT_FALSE(ClaimAsDeadWorker());
  EXPECT_EQ(GetJob(second.id).state, JobState::kQueued);
}

TEST_F(JobRunnerTest, TransientErrorRetriesWithBackoff) {
  auto runner = MakeRunner(milliseconds(1000), milliseconds(3000));
  int calls = 0;
  runner->Register(
      kWorkKind,
      [&](const Job&) -> Result<JobOutcome> {
        if (++calls <= 3) return MakeError(ErrorCode::kUnavailable, "provider busy");
        return JobOutcome::kSucceeded;
      },
      nullptr);
  Job job = InsertJob(InsertBareSystem("lab"), kWorkKind);

  // Attempt n waits base * 2^(n-1) before the next, capped: 1 s, 2 s, 3 s.
  for (milliseconds delay : {milliseconds(1000), milliseconds(2000), milliseconds(3000)}) {
    ASSERT_TRUE(runner->RunOne("worker"));
    Job retried = GetJob(job.id);
    EXPECT_EQ(retried.state, JobState::kQueued);
    EXPECT_EQ(retried.run_after, clock_.Now() + delay);
    EXPECT_EQ(retried.last_error, "provider busy");
    EXPECT_TRUE(retried.claimed_by.empty());

    EXPECT_FALSE(runner->RunOne("worker")) << "ran before its backoff passed";
    clock_.Advance(delay - milliseconds(1));
    EXPECT_FALSE(runner->RunOne("worker")) << "ran before its backoff passed";
    clock_.Advance(milliseconds(1));
  }
  ASSERT_TRUE(runner->RunOne("worker"));

  Job done = GetJob(job.id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.attempt, 4);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(GetOperation(job.operation_id).state, OperationState::kSucceeded);
  auto events = ListEvents(job.system_id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].level, EventLevel::kWarning);
  EXPECT_EQ(events[0].message, "Attempt 1 failed: provider busy; retrying in 1 s");
  EXPECT_EQ(events[2].message, "Attempt 3 failed: provider busy; retrying in 3 s");
}

TEST_F(JobRunnerTest, PermanentErrorFailsJobOperationAndSystem) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kFailsToStart;
  options.start_failures = FakeProviderOptions::kAlwaysFail;
  UseFake(options);
  System system = MustCreate(alice_, "lab");
  Job job = ListActiveJobs(system.id).at(0);

  ASSERT_TRUE(runner_->RunOne("worker"));

  Job failed = GetJob(job.id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.attempt, 1);
  EXPECT_NE(failed.last_error.find("the machine image is broken"), std::string::npos)
      << failed.last_error;
  Operation operation = GetOperation(job.operation_id);
  EXPECT_EQ(operation.state, OperationState::kFailed);
  EXPECT_EQ(operation.error, failed.last_error);

  System after = GetSystem(system.id);
  EXPECT_EQ(after.status, SystemStatus::kFailed);
  auto events = ListEvents(system.id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().level, EventLevel::kError);
  EXPECT_EQ(events.back().message,
            "Failed: create machine: fake provider: create system " + system.id +
                " failed: the machine image is broken (set to fail every start)");
  EXPECT_EQ(fake_->CallCount(FakeCall::kCreate), 1);
  EXPECT_EQ(fake_->MachineCount(), 0u);
  EXPECT_FALSE(runner_->RunOne("worker"));
}

TEST_F(JobRunnerTest, ExhaustedAttemptsFailForGood) {
  auto runner = MakeRunner(milliseconds(1000), milliseconds(3000));
  int calls = 0;
  std::vector<std::string> failures;
  runner->Register(
      kWorkKind,
      [&](const Job&) -> Result<JobOutcome> {
        ++calls;
        return MakeError(ErrorCode::kUnavailable, "still busy");
      },
      [&](const Job& job, const Error& error) { failures.push_back(job.id + ": " + error.message); });
  Job job = InsertJob(InsertBareSystem("lab"), kWorkKind, 3);

  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_TRUE(runner->RunOne("worker")) << "attempt " << attempt;
    clock_.Advance(seconds(3));
  }
  EXPECT_FALSE(runner->RunOne("worker"));

  Job failed = GetJob(job.id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.attempt, 3);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(GetOperation(job.operation_id).state, OperationState::kFailed);
  EXPECT_EQ(GetOperation(job.operation_id).error, "still busy");
  EXPECT_EQ(failures, std::vector<std::string>{job.id + ": still busy"});
}

TEST_F(JobRunnerTest, UnknownKindFailsForGood) {
  Job job = InsertJob(InsertBareSystem("lab"), "test.unknown");
  ASSERT_TRUE(runner_->RunOne("worker"));
  Job failed = GetJob(job.id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.last_error, "no handler for job kind test.unknown");
}

TEST_F(JobRunnerTest, SilentJobIsRequeuedThenFailed) {
  auto runner = MakeRunner(milliseconds(1000), milliseconds(3000));
  std::vector<std::string> failures;
  runner->Register(
      kWorkKind, [](const Job&) -> Result<JobOutcome> { return JobOutcome::kSucceeded; },
      [&](const Job& job, const Error& error) { failures.push_back(job.id); });
  Job job = InsertJob(InsertBareSystem("lab"), kWorkKind, 2);

  ASSERT_TRUE(ClaimAsDeadWorker());
  clock_.Advance(seconds(60));
  auto reaped = runner->ReapSilentJobs();
  ASSERT_TRUE(reaped) << reaped.error().message;
  EXPECT_EQ(*reaped, 0) << "a heartbeat exactly at the limit is not silent";

  clock_.Advance(milliseconds(1));
  reaped = runner->ReapSilentJobs();
  ASSERT_TRUE(reaped) << reaped.error().message;
  EXPECT_EQ(*reaped, 1);
  Job requeued = GetJob(job.id);
  EXPECT_EQ(requeued.state, JobState::kQueued);
  EXPECT_TRUE(requeued.claimed_by.empty());
  EXPECT_EQ(requeued.run_after, clock_.Now() + milliseconds(1000));
  EXPECT_NE(requeued.last_error.find("dead-worker/0 stopped sending heartbeats"),
            std::string::npos)
      << requeued.last_error;
  EXPECT_TRUE(failures.empty());

  // The second and last attempt dies too: the job fails for good.
  clock_.Advance(seconds(1));
  auto claimed = ClaimAsDeadWorker();
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->attempt, 2);
  clock_.Advance(seconds(61));
  reaped = runner->ReapSilentJobs();
  ASSERT_TRUE(reaped) << reaped.error().message;
  EXPECT_EQ(*reaped, 1);
  EXPECT_EQ(GetJob(job.id).state, JobState::kFailed);
  EXPECT_EQ(GetOperation(job.operation_id).state, OperationState::kFailed);
  EXPECT_EQ(failures, std::vector<std::string>{job.id});
}

TEST_F(JobRunnerTest, HeartbeatKeepsJobFromReaper) {
  auto runner = MakeRunner(milliseconds(1000), milliseconds(3000));
  Job job = InsertJob(InsertBareSystem("lab"), kWorkKind);
  ASSERT_TRUE(ClaimAsDeadWorker());

  clock_.Advance(seconds(50));
  auto beat = store_->Write([&](Tx& tx) { return tx.HeartbeatJobs({job.id}, "dead-worker/0"); });
  ASSERT_TRUE(beat) << beat.error().message;
  clock_.Advance(seconds(50));
  auto reaped = runner->ReapSilentJobs();
  ASSERT_TRUE(reaped) << reaped.error().message;
  EXPECT_EQ(*reaped, 0);
  EXPECT_EQ(GetJob(job.id).state, JobState::kRunning);

  // A heartbeat from a worker without the claim does not count.
  auto stray = store_->Write([&](Tx& tx) { return tx.HeartbeatJobs({job.id}, "other/0"); });
  ASSERT_TRUE(stray) << stray.error().message;
  clock_.Advance(seconds(11));
  reaped = runner->ReapSilentJobs();
  ASSERT_TRUE(reaped) << reaped.error().message;
  EXPECT_EQ(*reaped, 1);
}

TEST_F(JobRunnerTest, RequeueRunningJobsReturnsClaims) {
  auto runner = MakeRunner(milliseconds(1000), milliseconds(3000));
  int calls = 0;
  runner->Register(
      kWorkKind,
      [&](const Job&) -> Result<JobOutcome> {
        ++calls;
        return JobOutcome::kSucceeded;
      },
      nullptr);
  Job first = InsertJob(InsertBareSystem("one"), kWorkKind);
  Job second = InsertJob(InsertBareSystem("two"), kWorkKind);
  ASSERT_TRUE(ClaimAsDeadWorker());
  ASSERT_TRUE(ClaimAsDeadWorker());
  EXPECT_FALSE(runner->RunOne("worker"));

  auto requeued = store_->WriteValue<int64_t>([](Tx& tx) { return tx.RequeueRunningJobs(); });
  ASSERT_TRUE(requeued) << requeued.error().message;
  EXPECT_EQ(*requeued, 2);
  for (const auto& id : {first.id, second.id}) {
    Job job = GetJob(id);
    EXPECT_EQ(job.state, JobState::kQueued);
    EXPECT_TRUE(job.claimed_by.empty());
  }

  EXPECT_TRUE(runner->RunOne("worker"));
  EXPECT_TRUE(runner->RunOne("worker"));
  EXPECT_FALSE(runner->RunOne("worker"));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(GetJob(first.id).state, JobState::kSucceeded);
  EXPECT_EQ(GetJob(second.id).state, JobState::kSucceeded);
}

}  // namespace
}  // namespace puddle::testing
