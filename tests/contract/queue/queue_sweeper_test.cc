// RepublishQueuedJobs and the store query behind it, on SQLite and
// PostgreSQL, and its repair of a wake-up that FLUSHALL removed from Redis.
#include <gmock/gmock.h>

#include <mutex>

#include "contract_fixture.h"
#include "dispatcher_fixture.h"
#include "queue/redis/redis_dispatcher.h"
#include "redis_server.h"
#include "workers/loops/queue_sweeper.h"

namespace puddle::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Records the ids it is asked to publish.
class RecordingDispatcher final : public Dispatcher {
 public:
  void Publish(const std::string& job_id) override {
    std::lock_guard lock(mutex_);
    published_.push_back(job_id);
  }
  void WaitForWork(std::chrono::milliseconds) override {}
  void Close() override {}

  std::vector<std::string> published() {
    std::lock_guard lock(mutex_);
    return published_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> published_;
};

Job MakeJob(const std::string& id, const std::string& system_id, JobState state,
            TimePoint run_after, TimePoint updated_at) {
  Job job;
  job.id = id;
  job.kind = "system.start";
  job.system_id = system_id;
  job.operation_id = "op-" + id;
  job.state = state;
  job.run_after = run_after;
  job.created_at = updated_at;
  job.updated_at = updated_at;
  return job;
}

Status InsertJobs(Store& store, const std::vector<Job>& jobs) {
  return store.Write([&](Tx& tx) -> Status {
    for (const auto& job : jobs) PUDDLE_RETURN_IF_ERROR(tx.InsertJob(job));
    return Ok();
  });
}

using QueueSweeperTest = StoreContractTest;

TEST_P(QueueSweeperTest, RepublishesOnlyStaleClaimableJobs) {
  TimePoint now = TestStart();
  TimePoint old = now - minutes(10);
  ASSERT_OK(InsertJobs(
      *store_, {
                   MakeJob("stale", "sys-a", JobState::kQueued, old, old),
                   MakeJob("fresh", "sys-b", JobState::kQueued, now, now - seconds(10)),
                   MakeJob("retry-later", "sys-c", JobState::kQueued, now + minutes(1), old),
                   MakeJob("running", "sys-d", JobState::kRunning, old, old),
                   MakeJob("behind-running", "sys-d", JobState::kQueued, old, old),
                   MakeJob("done", "sys-e", JobState::kSucceeded, old, old),
                   MakeJob("retry-due", "sys-f", JobState::kQueued, now - seconds(1), old),
               }));
  RecordingDispatcher dispatcher;

  ASSERT_OK(RepublishQueuedJobs(*store_, dispatcher, now - minutes(1)));

  // Claim order: run_after, then created_at.
  EXPECT_THAT(dispatcher.published(), ElementsAre("stale", "retry-due"));
}

TEST_P(QueueSweeperTest, NothingStalePublishesNothing) {
  TimePoint now = TestStart();
  ASSERT_OK(InsertJobs(*store_, {MakeJob("fresh", "sys-a", JobState::kQueued, now, now)}));
  RecordingDispatcher dispatcher;

  ASSERT_OK(RepublishQueuedJobs(*store_, dispatcher, now - minutes(1)));

  EXPECT_THAT(dispatcher.published(), IsEmpty());
}

TEST_P(QueueSweeperTest, PublishesAtMostTheLimit) {
  TimePoint old = TestStart() - minutes(10);
  std::vector<Job> jobs;
  for (int i = 0; i < kMaxRepublishedJobs + 5; ++i) {
    jobs.push_back(MakeJob("job-" + std::to_string(i), "sys-" + std::to_string(i),
                           JobState::kQueued, old, old));
  }
  ASSERT_OK(InsertJobs(*store_, jobs));
  RecordingDispatcher dispatcher;

  ASSERT_OK(RepublishQueuedJobs(*store_, dispatcher, TestStart() - minutes(1)));

  EXPECT_EQ(dispatcher.published().size(), static_cast<size_t>(kMaxRepublishedJobs));
}

INSTANTIATE_TEST_SUITE_P(Dialects, QueueSweeperTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

using QueueSweeperRedisTest = StoreContractTest;

TEST_P(QueueSweeperRedisTest, RepublishesJobAfterFlushAll) {
  if (RedisServer::FindBinary().empty()) {
    GTEST_SKIP() << "redis-server is not installed; install the redis-server package "
                    "(make test does) to run this test";
  }
  auto server = RedisServer::Start();
  ASSERT_TRUE(server) << server.error().message;
  RedisOptions options;
  options.address = (*server)->address();
  auto opened = RedisDispatcher::Open(options);
  ASSERT_TRUE(opened) << opened.error().message;
  RedisDispatcher& dispatcher = **opened;

  TimePoint old = TestStart() - minutes(10);
  ASSERT_OK(InsertJobs(*store_, {MakeJob("job-lost", "sys-a", JobState::kQueued, old, old)}));
  dispatcher.Publish("job-lost");
  ASSERT_TRUE((*server)->Command({"FLUSHALL"}));

  // The wake-up is gone: a waiter finds nothing until the sweeper runs.
  WaitingThreads waiter(dispatcher, 1, seconds(20));
  bool blocked = PollUntil(
      [&] {
        auto clients = (*server)->BlockedClients();
        return clients && *clients >= 1;
      },
      seconds(10));
  ASSERT_TRUE(blocked) << "the waiter did not block in XREADGROUP within 10 s";
  EXPECT_EQ(waiter.returned(), 0);

  auto swept_at = Clock::now();
  ASSERT_OK(RepublishQueuedJobs(*store_, dispatcher, TestStart() - minutes(1)));
  auto returned_at = waiter.Join();

  EXPECT_LT(returned_at[0] - swept_at, seconds(2));
  auto entries = (*server)->Command({"XRANGE", "puddle:jobs", "-", "+"});
  ASSERT_TRUE(entries) << entries.error().message;
  EXPECT_THAT(*entries, HasSubstr("job_id job-lost"));
}

INSTANTIATE_TEST_SUITE_P(Sqlite, QueueSweeperRedisTest, ::testing::Values("sqlite"), DialectName);

}  // namespace
}  // namespace puddle::testing
