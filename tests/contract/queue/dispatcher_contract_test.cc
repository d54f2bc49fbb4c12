// The dispatcher contract: one suite run against the in-process dispatcher
// and against the Redis dispatcher on a throwaway redis-server.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "dispatcher_fixture.h"
#include "queue/embedded/embedded_dispatcher.h"
#include "queue/redis/redis_dispatcher.h"
#include "redis_server.h"

namespace puddle::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class DispatcherContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "embedded") {
      dispatcher_ = std::make_unique<EmbeddedDispatcher>();
      return;
    }
    if (RedisServer::FindBinary().empty()) {
      GTEST_SKIP() << "redis-server is not installed; install the redis-server package "
                      "(make test does) to run the Redis half of this suite";
    }
    auto server = RedisServer::Start();
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    RedisOptions options;
    options.address = server_->address();
    options.consumer = "contract-test";
    auto opened = RedisDispatcher::Open(options);
    ASSERT_TRUE(opened) << opened.error().message;
    dispatcher_ = std::move(*opened);
  }

  // Waits until `count` threads block inside WaitForWork. Redis reports its
  // blocked clients. The in-process dispatcher has no such count, so its
  // threads get 100 ms to block; a thread that is late still receives
  // the publish, so only the timing claim weakens.
  void AwaitWaiters(int count) {
    if (!server_) {
      std::this_thread::sleep_for(milliseconds(100));
      return;
    }
    bool blocked = PollUntil(
        [&] {
          auto clients = server_->BlockedClients();
          return clients && *clients >= count;
        },
        seconds(10));
    ASSERT_TRUE(blocked) << count << " waiters did not block in XREADGROUP within 10 s";
  }

  // Declared first so that it outlives the dispatcher.
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_P(DispatcherContractTest, PublishWakesWaiter) {
  WaitingThreads waiter(*dispatcher_, 1, seconds(20));
  AwaitWaiters(1);

  auto published_at = Clock::now();
  dispatcher_->Publish("job-1");
  auto returned_at = waiter.Join();

  EXPECT_LT(returned_at[0] - published_at, seconds(2)) << "the wait ran into its 20 s timeout";
}

TEST_P(DispatcherContractTest, PublishBeforeWaitIsNotLost) {
  dispatcher_->Publish("job-1");

  auto started = Clock::now();
  dispatcher_->WaitForWork(seconds(20));

  EXPECT_LT(Clock::now() - started, seconds(2));
}

TEST_P(DispatcherContractTest, WaitWithoutPublishTimesOut) {
  auto started = Clock::now();
  dispatcher_->WaitForWork(milliseconds(300));
  auto elapsed = Clock::now() - started;

  EXPECT_GE(elapsed, milliseconds(250));
  EXPECT_LT(elapsed, seconds(2));
}

TEST_P(DispatcherContractTest, CloseWakesAllWaiters) {
  WaitingThreads waiters(*dispatcher_, 4, seconds(30));
  AwaitWaiters(4);

  auto closed_at = Clock::now();
  dispatcher_->Close();
  auto returned_at = waiters.Join();

  for (size_t i = 0; i < returned_at.size(); ++i) {
    EXPECT_LT(returned_at[i] - closed_at, seconds(1)) << "waiter " << i;
  }
}

TEST_P(DispatcherContractTest, WaitAfterCloseReturnsAtOnce) {
  dispatcher_->Close();

  auto started = Clock::now();
  dispatcher_->WaitForWork(seconds(30));

  EXPECT_LT(Clock::now() - started, milliseconds(500));
}

TEST_P(DispatcherContractTest, EachPublishWakesOneWaiter) {
  WaitingThreads waiters(*dispatcher_, 4, seconds(20));
  AwaitWaiters(4);

  auto published_at = Clock::now();
  for (int i = 0; i < 4; ++i) dispatcher_->Publish("job-" + std::to_string(i));
  auto returned_at = waiters.Join();

  for (size_t i = 0; i < returned_at.size(); ++i) {
    EXPECT_LT(returned_at[i] - published_at, seconds(2)) << "waiter " << i << " was not woken";
  }
}

TEST_P(DispatcherContractTest, ManyPublishesWakeAsManyWaits) {
  constexpr int kPublishes = 40;
  std::atomic<int> wakes{0};
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;
  auto stop_threads = [&] {
    stopping = true;
    dispatcher_->Close();
    for (auto& thread : threads) {
      if (thread.joinable()) thread.join();
    }
  };
  // Stops the threads also when an assertion below returns early.
  std::unique_ptr<void, std::function<void(void*)>> cleanup(this, [&](void*) { stop_threads(); });
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      while (!stopping) {
        dispatcher_->WaitForWork(seconds(20));
        if (!stopping) ++wakes;
      }
    });
  }
  AwaitWaiters(4);

  for (int i = 0; i < kPublishes; ++i) dispatcher_->Publish("job-" + std::to_string(i));
  bool all_woken = PollUntil([&] { return wakes >= kPublishes; }, seconds(10));
  stop_threads();

  EXPECT_TRUE(all_woken) << "only " << wakes << " of " << kPublishes << " publishes woke a waiter";
  EXPECT_EQ(wakes, kPublishes);
}

INSTANTIATE_TEST_SUITE_P(Dispatchers, DispatcherContractTest,
                         ::testing::Values("embedded", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace puddle::testing
