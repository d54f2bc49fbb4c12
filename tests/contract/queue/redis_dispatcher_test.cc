// RedisDispatcher beyond the dispatcher contract: options, authentication,
// unreachable servers, and recovery from FLUSHALL and restarts of Redis.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "dispatcher_fixture.h"
#include "queue/redis/redis_dispatcher.h"
#include "redis_server.h"

namespace puddle::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPassword = "correct-horse-battery-staple";

class RedisDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RedisServer::FindBinary().empty()) {
      GTEST_SKIP() << "redis-server is not installed; install the redis-server package "
                      "(make test does) to run these tests";
    }
  }

  void StartServer(const std::string& password = "") {
    auto server = RedisServer::Start(password);
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
  }

  RedisOptions Options() const {
    RedisOptions options;
    options.address = server_->address();
    options.consumer = "redis-test";
    return options;
  }

  void Open(const RedisOptions& options) {
    auto opened = RedisDispatcher::Open(options);
    ASSERT_TRUE(opened) << opened.error().message;
    dispatcher_ = std::move(*opened);
  }

  void AwaitBlockedClients(int count) {
    bool blocked = PollUntil(
        [&] {
          auto clients = server_->BlockedClients();
          return clients && *clients >= count;
        },
        seconds(10));
    ASSERT_TRUE(blocked) << count << " clients did not block in XREADGROUP within 10 s";
  }

  void AwaitGroup() {
    bool exists = PollUntil(
        [&] {
          auto groups = server_->Command({"XINFO", "GROUPS", "puddle:jobs"});
          return groups && groups->find("puddle-workers") != std::string::npos;
        },
        seconds(10));
    ASSERT_TRUE(exists) << "consumer group puddle-workers was not recreated within 10 s";
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisDispatcher> dispatcher_;
};

TEST_F(RedisDispatcherTest, OpenCreatesStreamAndGroup) {
  StartServer();
  Open(Options());

  auto type = server_->Command({"TYPE", "puddle:jobs"});
  ASSERT_TRUE(type) << type.error().message;
  EXPECT_EQ(*type, "stream");
  auto groups = server_->Command({"XINFO", "GROUPS", "puddle:jobs"});
  ASSERT_TRUE(groups) << groups.error().message;
  EXPECT_THAT(*groups, HasSubstr("puddle-workers"));
}

TEST_F(RedisDispatcherTest, OpenKeepsExistingGroup) {
  StartServer();
  Open(Options());
  dispatcher_->Publish("job-1");
  dispatcher_.reset();

  // A second process joins the existing group and receives the entry that was
  // published before it joined.
  Open(Options());
  auto started = Clock::now();
  dispatcher_->WaitForWork(seconds(20));
  EXPECT_LT(Clock::now() - started, seconds(2));
}

TEST_F(RedisDispatcherTest, PublishAppendsJobId) {
  StartServer();
  Open(Options());

  dispatcher_->Publish("job-42");

  auto entries = server_->Command({"XRANGE", "puddle:jobs", "-", "+"});
  ASSERT_TRUE(entries) << entries.error().message;
  EXPECT_THAT(*entries, HasSubstr("job_id job-42"));
}

TEST_F(RedisDispatcherTest, WakeAcknowledgesEntry) {
  StartServer();
  Open(Options());
  dispatcher_->Publish("job-1");

  dispatcher_->WaitForWork(seconds(20));

  // XPENDING's summary starts with the number of entries read but not acknowledged.
  auto pending = server_->Command({"XPENDING", "puddle:jobs", "puddle-workers"});
  ASSERT_TRUE(pending) << pending.error().message;
  EXPECT_EQ(pending->substr(0, 2), "0 ") << *pending;
}

TEST_F(RedisDispatcherTest, PublishFromOtherProcessWakesWaiter) {
  StartServer();
  Open(Options());
  RedisOptions other_options = Options();
  other_options.consumer = "other-process";
  auto other = RedisDispatcher::Open(other_options);
  ASSERT_TRUE(other) << other.error().message;

  WaitingThreads waiter(*dispatcher_, 1, seconds(20));
  AwaitBlockedClients(1);
  auto published_at = Clock::now();
  (*other)->Publish("job-1");
  auto returned_at = waiter.Join();

  EXPECT_LT(returned_at[0] - published_at, seconds(2));
}

TEST_F(RedisDispatcherTest, StreamStaysTrimmed) {
  StartServer();
  Open(Options());

  for (int i = 0; i < 11000; ++i) dispatcher_->Publish("job-" + std::to_string(i));

  auto length = server_->Command({"XLEN", "puddle:jobs"});
  ASSERT_TRUE(length) << length.error().message;
  // MAXLEN ~ trims whole stream nodes (100 entries by default), so the
  // length stays a little above 10000.
  EXPECT_GE(std::stoi(*length), 10000);
  EXPECT_LE(std::stoi(*length), 10100);
}

TEST_F(RedisDispatcherTest, UnixSocketWorks) {
  StartServer();
  RedisOptions options = Options();
  options.protocol = "unix";
  options.address = server_->socket_path();
  Open(options);

  WaitingThreads waiter(*dispatcher_, 1, seconds(20));
  AwaitBlockedClients(1);
  auto published_at = Clock::now();
  dispatcher_->Publish("job-1");
  auto returned_at = waiter.Join();

  EXPECT_LT(returned_at[0] - published_at, seconds(2));
}

TEST_F(RedisDispatcherTest, PasswordAuthWorks) {
  StartServer(kPassword);
  RedisOptions options = Options();
  options.password = kPassword;
  Open(options);

  WaitingThreads waiter(*dispatcher_, 1, seconds(20));
  AwaitBlockedClients(1);
  auto published_at = Clock::now();
  dispatcher_->Publish("job-1");
  auto returned_at = waiter.Join();

  EXPECT_LT(returned_at[0] - published_at, seconds(2));
}

TEST_F(RedisDispatcherTest, WrongPasswordFailsOpen) {
  StartServer(kPassword);
  RedisOptions options = Options();
  options.password = "wrong-secret-password";

  auto opened = RedisDispatcher::Open(options);

  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnauthenticated);
  EXPECT_THAT(opened.error().message, HasSubstr(server_->address()));
  EXPECT_THAT(opened.error().message, HasSubstr("rejected the password"));
  EXPECT_THAT(opened.error().message, Not(HasSubstr("wrong-secret-password")));
  EXPECT_THAT(opened.error().message, Not(HasSubstr(kPassword)));
}

TEST_F(RedisDispatcherTest, MissingPasswordFailsOpen) {
  StartServer(kPassword);

  auto opened = RedisDispatcher::Open(Options());

  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnauthenticated);
  EXPECT_THAT(opened.error().message, HasSubstr(server_->address()));
  EXPECT_THAT(opened.error().message, HasSubstr("requires a password"));
}

TEST_F(RedisDispatcherTest, PasswordWithoutServerPasswordFailsOpen) {
  StartServer();
  RedisOptions options = Options();
  options.password = "unneeded-secret";

  auto opened = RedisDispatcher::Open(options);

  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("rejected the password"));
  EXPECT_THAT(opened.error().message, Not(HasSubstr("unneeded-secret")));
}

TEST_F(RedisDispatcherTest, UnreachableAddressFailsFast) {
  // A server that stopped leaves a port that nothing listens on.
  StartServer();
  RedisOptions options = Options();
  options.password = "secret-for-unreachable";
  server_.reset();

  auto started = Clock::now();
  auto opened = RedisDispatcher::Open(options);

  ASSERT_FALSE(opened);
  EXPECT_LT(Clock::now() - started, seconds(1));
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(opened.error().message, HasSubstr(options.address));
  EXPECT_THAT(opened.error().message, HasSubstr("Connection refused"));
  EXPECT_THAT(opened.error().message, Not(HasSubstr("secret-for-unreachable")));
}

TEST_F(RedisDispatcherTest, MissingUnixSocketFailsOpen) {
  RedisOptions options;
  options.protocol = "unix";
  options.address = "/nonexistent/puddle-redis.sock";

  auto opened = RedisDispatcher::Open(options);

  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("/nonexistent/puddle-redis.sock"));
}

TEST_F(RedisDispatcherTest, TlsIsRejected) {
  RedisOptions options;
  options.address = "127.0.0.1:6379";
  options.tls = true;

  auto opened = RedisDispatcher::Open(options);

  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kValidationFailed);
  EXPECT_THAT(opened.error().message, HasSubstr("hiredis 0.14"));
  EXPECT_THAT(opened.error().message, HasSubstr("has no TLS"));
  EXPECT_THAT(opened.error().message, HasSubstr("private network or on loopback"));
}

TEST_F(RedisDispatcherTest, InvalidOptionsAreRejected) {
  struct Case {
    std::string protocol;
    std::string address;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"udp", "127.0.0.1:6379", "protocol 'udp' is not supported"},
      {"tcp", "", "address is empty"},
      {"tcp", "127.0.0.1", "no port"},
      {"tcp", "::1:6379", "IPv6 address needs brackets"},
      {"tcp", "[::1]6379", "no ']:'"},
      {"tcp", ":6379", "no host"},
      {"tcp", "127.0.0.1:0", "port is not a number from 1 to 65535"},
      {"tcp", "127.0.0.1:65536", "port is not a number from 1 to 65535"},
      {"tcp", "127.0.0.1:63x", "port is not a number from 1 to 65535"},
  };
  for (const auto& test_case : cases) {
    RedisOptions options;
    options.protocol = test_case.protocol;
    options.address = test_case.address;

    auto opened = RedisDispatcher::Open(options);

    ASSERT_FALSE(opened) << test_case.address;
    EXPECT_EQ(opened.error().code, ErrorCode::kValidationFailed) << test_case.address;
    EXPECT_THAT(opened.error().message, HasSubstr(test_case.message)) << test_case.address;
  }
}

TEST_F(RedisDispatcherTest, StreamKeyOfOtherTypeFailsOpen) {
  StartServer();
  ASSERT_TRUE(server_->Command({"SET", "puddle:jobs", "not a stream"}));

  auto opened = RedisDispatcher::Open(Options());

  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("holds a value that is not a stream"));
}

TEST_F(RedisDispatcherTest, FlushAllWhileWaitingRecovers) {
  StartServer();
  Open(Options());
  WaitingThreads waiter(*dispatcher_, 1, seconds(20));
  AwaitBlockedClients(1);

  ASSERT_TRUE(server_->Command({"FLUSHALL"}));
  // The same WaitForWork call recreates the group and blocks again.
  AwaitGroup();
  AwaitBlockedClients(1);
  EXPECT_EQ(waiter.returned(), 0) << "FLUSHALL ended the wait instead of only interrupting it";

  auto published_at = Clock::now();
  dispatcher_->Publish("job-after-flush");
  auto returned_at = waiter.Join();
  EXPECT_LT(returned_at[0] - published_at, seconds(2));
}

TEST_F(RedisDispatcherTest, PublishRightAfterFlushAllIsNotLost) {
  StartServer();
  Open(Options());
  WaitingThreads waiter(*dispatcher_, 1, seconds(20));
  AwaitBlockedClients(1);

  // The XADD may recreate the stream before the waiter recreates the group;
  // the group starts at id 0, so the entry is delivered either way.
  ASSERT_TRUE(server_->Command({"FLUSHALL"}));
  auto published_at = Clock::now();
  dispatcher_->Publish("job-after-flush");
  auto returned_at = waiter.Join();

  EXPECT_LT(returned_at[0] - published_at, seconds(2));
}

TEST_F(RedisDispatcherTest, RestartOfRedisRecovers) {
  StartServer();
  Open(Options());
  WaitingThreads waiter(*dispatcher_, 1, seconds(30));
  AwaitBlockedClients(1);

  server_->Kill();
  // Publishing while Redis is down neither fails the caller nor blocks it.
  auto publish_started = Clock::now();
  dispatcher_->Publish("job-while-down");
  dispatcher_->Publish("job-while-down-2");
  EXPECT_LT(Clock::now() - publish_started, seconds(1));
  ASSERT_TRUE(server_->StartAgain()) << "redis-server did not start again on the same port";

  // The waiter reconnects within the backoff (at most 5 s), recreates the
  // group and blocks again, all in the same WaitForWork call.
  AwaitGroup();
  AwaitBlockedClients(1);
  EXPECT_EQ(waiter.returned(), 0) << "the restart ended the wait";

  auto published_at = Clock::now();
  dispatcher_->Publish("job-after-restart");
  auto returned_at = waiter.Join();
  EXPECT_LT(returned_at[0] - published_at, seconds(2));
}

TEST_F(RedisDispatcherTest, WaitWhileRedisIsDownTimesOut) {
  StartServer();
  Open(Options());
  server_->Kill();

  auto started = Clock::now();
  dispatcher_->WaitForWork(milliseconds(500));
  auto elapsed = Clock::now() - started;

  EXPECT_GE(elapsed, milliseconds(450));
  EXPECT_LT(elapsed, seconds(2));
}

TEST_F(RedisDispatcherTest, CloseWakesWaiterWhileRedisIsDown) {
  StartServer();
  Open(Options());
  WaitingThreads waiter(*dispatcher_, 1, seconds(30));
  AwaitBlockedClients(1);
  server_->Kill();
  // Gives the waiter time to lose its connection and start backing off.
  std::this_thread::sleep_for(milliseconds(300));

  auto closed_at = Clock::now();
  dispatcher_->Close();
  auto returned_at = waiter.Join();

  EXPECT_LT(returned_at[0] - closed_at, seconds(1));
}

TEST_F(RedisDispatcherTest, PublishWorksAfterClose) {
  StartServer();
  Open(Options());
  dispatcher_->Close();

  dispatcher_->Publish("job-during-shutdown");

  auto length = server_->Command({"XLEN", "puddle:jobs"});
  ASSERT_TRUE(length) << length.error().message;
  EXPECT_EQ(*length, "1");
}

}  // namespace
}  // namespace puddle::testing
