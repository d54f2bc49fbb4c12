// FakeProvider on its own: each failure mode behaves as documented, and the
// call counts tests rely on are exact.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "providers/fake/fake_provider.h"

namespace puddle {
namespace {

using std::chrono::milliseconds;

LaunchRequest Launch(const std::string& system_id) {
  LaunchRequest request;
  request.installation_id = "fake-test";
  request.system_id = system_id;
  return request;
}

FakeProviderOptions Fast(FakeFailure failure = FakeFailure::kNone) {
  FakeProviderOptions options;
  options.failure = failure;
  options.fast = true;
  return options;
}

TEST(FakeProviderTest, CreateAdoptsExistingMachine) {
  FakeProvider fake(Fast());
  auto first = fake.Create(Launch("sys1"));
  ASSERT_TRUE(first) << first.error().message;
  auto second = fake.Create(Launch("sys1"));
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(fake.CallCount(FakeCall::kCreate), 2);
  EXPECT_EQ(fake.MachinesCreated(), 1);

  auto state = boost::json::parse(*first).as_object();
  EXPECT_EQ(state.at("machine").as_string(), "m1");
  EXPECT_TRUE(state.at("running").as_bool());

  auto other = fake.Create(Launch("sys2"));
  ASSERT_TRUE(other);
  EXPECT_EQ(fake.MachinesCreated(), 2);
  auto owned = fake.ListOwned();
  ASSERT_TRUE(owned);
  ASSERT_EQ(owned->size(), 2u);
  EXPECT_EQ((*owned)[0].resource_id, "fake:m1");
  EXPECT_EQ((*owned)[0].system_id, "sys1");
}

TEST(FakeProviderTest, LifecycleOfOneMachine) {
  FakeProviderOptions options = Fast();
  options.fast = false;
  options.call_delay = milliseconds(0);
  options.starting_checks = 2;
  FakeProvider fake(options);
  auto state = fake.Create(Launch("sys1"));
  ASSERT_TRUE(state);

  auto observed = fake.Poll("sys1", *state);
  ASSERT_TRUE(observed);
  EXPECT_EQ(observed->vm_status, VmStatus::kRunning);
  EXPECT_EQ(observed->address, "127.0.0.1:39000");
  EXPECT_EQ(fake.CheckProduct(Launch("sys1"), *state), ProductStatus::kStarting);
  EXPECT_EQ(fake.CheckProduct(Launch("sys1"), *state), ProductStatus::kStarting);
  EXPECT_EQ(fake.CheckProduct(Launch("sys1"), *state), ProductStatus::kReady);

  auto stopped = fake.Stop("sys1", *state);
  ASSERT_TRUE(stopped);
  observed = fake.Poll("sys1", *stopped);
  ASSERT_TRUE(observed);
  EXPECT_EQ(observed->vm_status, VmStatus::kStopped);
  EXPECT_EQ(observed->gone, GoneReason::kNone);
  EXPECT_EQ(fake.CheckProduct(Launch("sys1"), *stopped), ProductStatus::kStopped);

  auto started = fake.Start(Launch("sys1"), *stopped);
  ASSERT_TRUE(started);
  EXPECT_EQ(fake.Poll("sys1", *started)->vm_status, VmStatus::kRunning);

  ASSERT_TRUE(fake.Delete("sys1", *started));
  ASSERT_TRUE(fake.Delete("sys1", *started)) << "a second delete finds nothing and succeeds";
  EXPECT_EQ(fake.MachineCount(), 0u);
  observed = fake.Poll("sys1", *started);
  ASSERT_TRUE(observed);
  EXPECT_EQ(observed->gone, GoneReason::kVanished);
  auto restart = fake.Start(Launch("sys1"), *started);
  ASSERT_FALSE(restart);
  EXPECT_EQ(restart.error().code, ErrorCode::kInternal);

  auto logs = fake.ReadLogs("sys1", *started, 10);
  ASSERT_TRUE(logs);
  EXPECT_TRUE(logs->empty());
}

TEST(FakeProviderTest, TransientStartFailuresThenSuccess) {
  FakeProviderOptions options = Fast(FakeFailure::kFailsToStart);
  options.start_failures = 2;
  FakeProvider fake(options);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto failed = fake.Create(Launch("sys1"));
    ASSERT_FALSE(failed) << "attempt " << attempt;
    EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
  }
  EXPECT_EQ(fake.MachineCount(), 0u);
  EXPECT_TRUE(fake.Create(Launch("sys1")));
  // Counted per system: another system fails its first calls too.
  EXPECT_FALSE(fake.Create(Launch("sys2")));
  EXPECT_EQ(fake.CallCount(FakeCall::kCreate), 4);
}

TEST(FakeProviderTest, PermanentStartFailure) {
  FakeProvider fake(Fast(FakeFailure::kFailsToStart));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto failed = fake.Create(Launch("sys1"));
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code, ErrorCode::kInternal);
  }
  EXPECT_EQ(fake.MachinesCreated(), 0);
}

TEST(FakeProviderTest, FlakyPollFailsEverySecondCall) {
  FakeProvider fake(Fast(FakeFailure::kFlakyPoll));
  auto state = fake.Create(Launch("sys1"));
  ASSERT_TRUE(state);
  for (int call = 1; call <= 6; ++call) {
    auto observed = fake.Poll("sys1", *state);
    EXPECT_EQ(observed.has_value(), call % 2 == 1) << "poll " << call;
    if (!observed) {
      EXPECT_EQ(observed.error().code, ErrorCode::kUnavailable);
    }
  }
  EXPECT_EQ(fake.CallCount(FakeCall::kPoll), 6);
}

TEST(FakeProviderTest, NeverReadyKeepsStarting) {
  FakeProvider fake(Fast(FakeFailure::kNeverReady));
  auto state = fake.Create(Launch("sys1"));
  ASSERT_TRUE(state);
  for (int check = 0; check < 5; ++check) {
    EXPECT_EQ(fake.CheckProduct(Launch("sys1"), *state), ProductStatus::kStarting);
  }
}

TEST(FakeProviderTest, DiesAfterFirstReadyCheck) {
  FakeProviderOptions options = Fast(FakeFailure::kDiesAfterStart);
  options.exit_description = "killed by signal 9";
  options.last_log_lines = "Killed";
  FakeProvider fake(options);
  auto state = fake.Create(Launch("sys1"));
  ASSERT_TRUE(state);
  EXPECT_EQ(fake.Poll("sys1", *state)->gone, GoneReason::kNone);
  EXPECT_EQ(fake.CheckProduct(Launch("sys1"), *state), ProductStatus::kReady);

  auto observed = fake.Poll("sys1", *state);
  ASSERT_TRUE(observed);
  EXPECT_EQ(observed->gone, GoneReason::kProcessExited);
  EXPECT_EQ(observed->vm_status, VmStatus::kStopped);
  EXPECT_EQ(observed->exit_description, "killed by signal 9");
  EXPECT_EQ(observed->last_log_lines, "Killed");
  auto logs = fake.ReadLogs("sys1", *state, 1);
  ASSERT_TRUE(logs);
  EXPECT_EQ(*logs, "Killed\n");

  // Starting it again runs it until its next ready check.
  auto started = fake.Start(Launch("sys1"), *state);
  ASSERT_TRUE(started);
  EXPECT_EQ(fake.Poll("sys1", *started)->gone, GoneReason::kNone);
}

TEST(FakeProviderTest, HostRestartStopsEveryMachine) {
  FakeProvider fake(Fast());
  auto first = fake.Create(Launch("sys1"));
  auto second = fake.Create(Launch("sys2"));
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  fake.SimulateHostRestart();

  for (const auto& [id, state] : {std::pair{"sys1", *first}, std::pair{"sys2", *second}}) {
    auto observed = fake.Poll(id, state);
    ASSERT_TRUE(observed);
    EXPECT_EQ(observed->gone, GoneReason::kHostRestarted) << id;
    EXPECT_EQ(observed->vm_status, VmStatus::kStopped) << id;
    EXPECT_FALSE(fake.FindMachine(id)->running);
  }
  auto started = fake.Start(Launch("sys1"), *first);
  ASSERT_TRUE(started);
  auto observed = fake.Poll("sys1", *started);
  ASSERT_TRUE(observed);
  EXPECT_EQ(observed->gone, GoneReason::kNone);
  EXPECT_EQ(observed->vm_status, VmStatus::kRunning);
}

TEST(FakeProviderTest, SlowCallsTakeConfiguredTime) {
  FakeProviderOptions options;
  options.failure = FakeFailure::kSlow;
  options.slow_delay = milliseconds(30);
  FakeProvider fake(options);
  auto began = std::chrono::steady_clock::now();
  auto state = fake.Create(Launch("sys1"));
  ASSERT_TRUE(state);
  ASSERT_TRUE(fake.Poll("sys1", *state));
  EXPECT_GE(std::chrono::steady_clock::now() - began, milliseconds(60));

  // Fast mode drops every sleep, the slow one included.
  options.fast = true;
  options.slow_delay = std::chrono::hours(1);
  FakeProvider fast(options);
  EXPECT_TRUE(fast.Create(Launch("sys1")));
}

TEST(FakeProviderTest, InvalidStateIsAnError) {
  FakeProvider fake(Fast());
  for (std::string state : {"{", "[]", "{\"machine\":1}", "{\"machine\":\"m1\",\"running\":true}"}) {
    auto observed = fake.Poll("sys1", state);
    ASSERT_FALSE(observed) << state;
    EXPECT_EQ(observed.error().code, ErrorCode::kInternal);
  }
  auto never = fake.Poll("sys1", "");
  ASSERT_TRUE(never);
  EXPECT_EQ(never->vm_status, VmStatus::kNone);
}

}  // namespace
}  // namespace puddle
