// The job queue: claim order, one running job per system, concurrent claims,
// heartbeats, requeueing and silent jobs, on every dialect.
#include <gmock/gmock.h>

#include <map>
#include <mutex>
#include <thread>

#include "contract_fixture.h"

namespace puddle::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

using StoreJobsTest = StoreContractTest;

Job MakeJob(const std::string& id, const std::string& system_id, TimePoint run_after,
            TimePoint created_at) {
  Job job;
  job.id = id;
  job.kind = "system.start";
  job.system_id = system_id;
  job.operation_id = "op-" + id;
  job.run_after = run_after;
  job.created_at = created_at;
  job.updated_at = created_at;
  return job;
}

Status InsertJobs(Store& store, const std::vector<Job>& jobs) {
  return store.Write([&](Tx& tx) -> Status {
    for (const auto& job : jobs) PUDDLE_RETURN_IF_ERROR(tx.InsertJob(job));
    return Ok();
  });
}

Result<std::optional<Job>> Claim(Store& store, const std::string& worker_id) {
  return store.WriteValue<std::optional<Job>>([&](Tx& tx) { return tx.ClaimJob(worker_id); });
}

// Returns the id of the claimed job, or "" when nothing was claimed.
std::string ClaimId(Store& store, const std::string& worker_id) {
  auto claimed = Claim(store, worker_id);
  EXPECT_TRUE(claimed) << claimed.error().message;
  if (!claimed || !*claimed) return "";
  return (**claimed).id;
}

Status Complete(Store& store, Job job) {
  job.state = JobState::kSucceeded;
  return store.Write([&](Tx& tx) { return tx.UpdateJob(job); });
}

// Counts the queued jobs with SQL, as no named query does.
Result<int64_t> CountQueuedJobs(sql::Database& database) {
  int64_t count = 0;
  auto counted = database.InTx(sql::TxMode::kRead, [&](sql::Connection& connection) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(
        auto rows, connection.Query("SELECT COUNT(*) FROM jobs WHERE state = 'queued'", {}));
    count = rows.at(0).Int(0);
    return Ok();
  });
  if (!counted) return tl::unexpected(counted.error());
  return count;
}

TEST_P(StoreJobsTest, ClaimTakesOldestRunnable) {
  TimePoint now = TestStart();
  ASSERT_OK(InsertJobs(*store_, {
                                    MakeJob("future", "sys-a", now + minutes(1), now),
                                    MakeJob("due-late", "sys-b", now, now + seconds(2)),
                                    MakeJob("overdue", "sys-c", now - minutes(1), now + seconds(5)),
                                    MakeJob("due-early", "sys-d", now, now + seconds(1)),
                                }));

  auto first = Claim(*store_, "worker-1");
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  const Job& job = **first;
  EXPECT_EQ(job.id, "overdue");
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(job.claimed_by, "worker-1");
  EXPECT_EQ(job.attempt, 1);
  EXPECT_EQ(job.heartbeat_at, now);
  EXPECT_EQ(job.updated_at, now);
  EXPECT_EQ(job.operation_id, "op-overdue");

  EXPECT_EQ(ClaimId(*store_, "worker-1"), "due-early");
  EXPECT_EQ(ClaimId(*store_, "worker-1"), "due-late");
  EXPECT_EQ(ClaimId(*store_, "worker-1"), "") << "a job must not run before run_after";

  auto next =
      store_->ReadValue<std::optional<TimePoint>>([](Tx& tx) { return tx.NextRunnableJobTime(); });
  ASSERT_OK(next);
  EXPECT_EQ(*next, now + minutes(1));

  clock_.Advance(minutes(1));
  EXPECT_EQ(ClaimId(*store_, "worker-1"), "future");
  next =
      store_->ReadValue<std::optional<TimePoint>>([](Tx& tx) { return tx.NextRunnableJobTime(); });
  ASSERT_OK(next);
  EXPECT_EQ(*next, std::nullopt);
}

TEST_P(StoreJobsTest, ClaimSkipsSystemWithRunningJob) {
  TimePoint now = TestStart();
  ASSERT_OK(InsertJobs(*store_, {
                                    MakeJob("a-1", "sys-a", now, now),
                                    MakeJob("a-2", "sys-a", now, now + seconds(1)),
                                    MakeJob("b-1", "sys-b", now, now + seconds(2)),
                                }));

  auto first = Claim(*store_, "worker-1");
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((**first).id, "a-1");
  EXPECT_EQ(ClaimId(*store_, "worker-2"), "b-1") << "a-2 must wait while a-1 runs";
  EXPECT_EQ(ClaimId(*store_, "worker-2"), "");

  ASSERT_OK(Complete(*store_, **first));
  EXPECT_EQ(ClaimId(*store_, "worker-2"), "a-2");
}

TEST_P(StoreJobsTest, ConcurrentClaimsTakeEachJobOnce) {
  constexpr int kJobs = 50;
  constexpr int kThreads = 4;
  std::vector<Job> jobs;
  for (int i = 0; i < kJobs; ++i) {
    jobs.push_back(MakeJob("job-" + std::to_string(i), "sys-" + std::to_string(i), TestStart(),
                           TestStart() + milliseconds(i)));
  }
  ASSERT_OK(InsertJobs(*store_, jobs));

  std::mutex mutex;
  std::map<std::string, int> claims;  // job id -> times claimed
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  auto deadline = std::chrono::steady_clock::now() + seconds(120);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string worker = "worker-" + std::to_string(t);
      while (std::chrono::steady_clock::now() < deadline) {
        auto claimed = Claim(*store_, worker);
        if (!claimed) {
          std::lock_guard lock(mutex);
          errors.push_back(claimed.error().message);
          return;
        }
        if (!*claimed) {
          // Nothing claimable at this moment; stop once no job is queued.
          auto queued = CountQueuedJobs(*database_);
          if (!queued || *queued == 0) return;
          continue;
        }
        {
          std::lock_guard lock(mutex);
          ++claims[(**claimed).id];
        }
        auto completed = Complete(*store_, **claimed);
        if (!completed) {
          std::lock_guard lock(mutex);
          errors.push_back(completed.error().message);
          return;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_THAT(errors, IsEmpty());
  EXPECT_EQ(claims.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, count] : claims) EXPECT_EQ(count, 1) << id << " was claimed twice";
}

TEST_P(StoreJobsTest, ConcurrentClaimsKeepOneRunningJobPerSystem) {
  // Ten systems with five jobs each. In each round four threads claim until
  // nothing is claimable, without completing anything, so a second running
  // job of one system would still be running when the round ends.
  constexpr int kSystems = 10;
  constexpr int kJobsPerSystem = 5;
  constexpr int kThreads = 4;
  std::vector<Job> jobs;
  for (int j = 0; j < kJobsPerSystem; ++j) {
    for (int s = 0; s < kSystems; ++s) {
      jobs.push_back(MakeJob("job-" + std::to_string(s) + "-" + std::to_string(j),
                             "sys-" + std::to_string(s), TestStart(),
                             TestStart() + milliseconds(j * kSystems + s)));
    }
  }
  ASSERT_OK(InsertJobs(*store_, jobs));

  std::map<std::string, int> claims;
  for (int round = 0; round < kJobsPerSystem; ++round) {
    std::mutex mutex;
    std::vector<Job> claimed_this_round;
    std::vector<std::string> errors;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string worker = "worker-" + std::to_string(t);
        for (int attempt = 0; attempt < kSystems * 4; ++attempt) {
          auto claimed = Claim(*store_, worker);
          std::lock_guard lock(mutex);
          if (!claimed) {
            errors.push_back(claimed.error().message);
            return;
          }
          if (!*claimed) return;
          claimed_this_round.push_back(**claimed);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_THAT(errors, IsEmpty()) << "round " << round;

    std::map<std::string, int> running_per_system;
    for (const auto& job : claimed_this_round) {
      ++running_per_system[job.system_id];
      ++claims[job.id];
    }
    for (const auto& [system_id, running] : running_per_system) {
      EXPECT_EQ(running, 1) << system_id << " had " << running << " running jobs in round "
                            << round;
    }
    // A claimer may give up when every candidate is locked by another one.
    // So a round need not reach every system, and later rounds make up for it.
    for (const auto& job : claimed_this_round) ASSERT_OK(Complete(*store_, job));
  }

  // Claim the rest one at a time.
  for (int i = 0; i < kSystems * kJobsPerSystem; ++i) {
    std::string id = ClaimId(*store_, "worker-last");
    if (id.empty()) break;
    ++claims[id];
    auto job = store_->ReadValue<std::optional<Job>>([&](Tx& tx) { return tx.GetJob(id); });
    ASSERT_OK(job);
    ASSERT_TRUE(job->has_value());
    ASSERT_OK(Complete(*store_, **job));
  }
  EXPECT_EQ(claims.size(), static_cast<size_t>(kSystems * kJobsPerSystem));
  for (const auto& [id, count] : claims) EXPECT_EQ(count, 1) << id << " was claimed twice";
}

TEST_P(StoreJobsTest, HeartbeatRequeueAndSilentJobs) {
  TimePoint now = TestStart();
  ASSERT_OK(InsertJobs(
      *store_, {MakeJob("j-1", "sys-1", now, now), MakeJob("j-2", "sys-2", now, now + seconds(1)),
                MakeJob("j-3", "sys-3", now + minutes(10), now + seconds(2))}));
  EXPECT_EQ(ClaimId(*store_, "worker-1"), "j-1");
  EXPECT_EQ(ClaimId(*store_, "worker-2"), "j-2");

  // A worker refreshes only the jobs it holds.
  clock_.Advance(seconds(30));
  ASSERT_OK(store_->Write([](Tx& tx) { return tx.HeartbeatJobs({"j-1", "j-2"}, "worker-1"); }));
  auto read = [&](const std::string& id) {
    auto job = store_->ReadValue<std::optional<Job>>([&](Tx& tx) { return tx.GetJob(id); });
    EXPECT_TRUE(job && job->has_value());
    return job && job->has_value() ? **job : Job{};
  };
  EXPECT_EQ(read("j-1").heartbeat_at, now + seconds(30));
  EXPECT_EQ(read("j-2").heartbeat_at, now);

  auto silent = store_->ReadValue<std::vector<Job>>(
      [&](Tx& tx) { return tx.ListSilentJobs(now + seconds(10)); });
  ASSERT_OK(silent);
  ASSERT_EQ(silent->size(), 1u);
  EXPECT_EQ((*silent)[0].id, "j-2");
  EXPECT_EQ((*silent)[0].claimed_by, "worker-2");

  auto active =
      store_->ReadValue<std::vector<Job>>([](Tx& tx) { return tx.ListActiveJobs("sys-1"); });
  ASSERT_OK(active);
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].state, JobState::kRunning);

  // A failed attempt goes back to the queue with a later run_after.
  Job retried = read("j-2");
  retried.state = JobState::kQueued;
  retried.claimed_by.clear();
  retried.last_error = "provider unavailable";
  retried.run_after = now + minutes(2);
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.UpdateJob(retried); }));
  Job stored = read("j-2");
  EXPECT_EQ(stored.state, JobState::kQueued);
  EXPECT_EQ(stored.last_error, "provider unavailable");
  EXPECT_EQ(stored.run_after, now + minutes(2));
  EXPECT_EQ(stored.attempt, 1);
  EXPECT_EQ(stored.updated_at, now + seconds(30));

  clock_.Advance(seconds(30));
  auto requeued = store_->WriteValue<int64_t>([](Tx& tx) { return tx.RequeueRunningJobs(); });
  ASSERT_OK(requeued);
  EXPECT_EQ(*requeued, 1);
  Job back = read("j-1");
  EXPECT_EQ(back.state, JobState::kQueued);
  EXPECT_EQ(back.claimed_by, "");
  EXPECT_EQ(back.run_after, now + minutes(1));

  // A heartbeat for a job that was requeued changes nothing.
  clock_.Advance(seconds(5));
  ASSERT_OK(store_->Write([](Tx& tx) { return tx.HeartbeatJobs({"j-1"}, "worker-1"); }));
  EXPECT_EQ(read("j-1").heartbeat_at, now + seconds(30));

  auto next =
      store_->ReadValue<std::optional<TimePoint>>([](Tx& tx) { return tx.NextRunnableJobTime(); });
  ASSERT_OK(next);
  EXPECT_EQ(*next, now + minutes(1));
  auto none_silent = store_->ReadValue<std::vector<Job>>(
      [&](Tx& tx) { return tx.ListSilentJobs(now + minutes(5)); });
  ASSERT_OK(none_silent);
  EXPECT_THAT(*none_silent, IsEmpty());

  EXPECT_EQ(ClaimId(*store_, "worker-3"), "j-1");
  EXPECT_EQ(read("j-1").attempt, 2);
}

INSTANTIATE_TEST_SUITE_P(Dialects, StoreJobsTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

}  // namespace
}  // namespace puddle::testing
