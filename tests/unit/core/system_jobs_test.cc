// SystemJobs with the real SystemService, JobRunner and ReconcileLoop on a
// FakeProvider: whole lifecycles, retries, timeouts and machines that go away.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "core_fixture.h"

namespace puddle::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class SystemJobsTest : public CoreTest {
 protected:
  std::string MachineOf(const System& system) {
    boost::system::error_code error;
    auto state = boost::json::parse(system.provider_state, error);
    if (error || !state.is_object() || !state.as_object().contains("machine")) {
      ADD_FAILURE() << "provider state of " << system.id << ": " << system.provider_state;
      return "";
    }
    return std::string(state.as_object().at("machine").as_string());
  }

  // Polls the store until `done` holds for the system or 10 s pass.
  bool WaitFor(const std::string& id, const std::function<bool(const System&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(GetSystem(id))) return true;
      std::this_thread::sleep_for(milliseconds(2));
    }
    return false;
  }
};

TEST_F(SystemJobsTest, CreateRunsSystemAndOpensSession) {
  System system = MustCreate(alice_, "lab");
  clock_.Advance(seconds(5));
  EXPECT_EQ(RunJobs(), 1);

  System running = GetSystem(system.id);
  EXPECT_EQ(running.status, SystemStatus::kRunning);
  EXPECT_EQ(running.vm_status, VmStatus::kRunning);
  EXPECT_EQ(running.product_status, ProductStatus::kReady);
  EXPECT_EQ(running.address, "127.0.0.1:39000");
  EXPECT_EQ(MachineOf(running), "m1");
  ASSERT_TRUE(running.last_activity_at.has_value());
  EXPECT_EQ(*running.last_activity_at, clock_.Now());

  auto sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].start, clock_.Now());
  EXPECT_FALSE(sessions[0].end.has_value());
  EXPECT_DOUBLE_EQ(sessions[0].price_per_hour, kPricePerHour);
  EXPECT_EQ(sessions[0].user_id, alice_.user_id);

  EXPECT_EQ(EventMessages(system.id),
            (std::vector<std::string>{"Queued by alice", "Provisioning the machine",
                                      "Machine started; waiting for the product to answer",
                                      "System is running"}));
  auto operations = ListOperations(system.id);
  ASSERT_EQ(operations.size(), 1u);
  EXPECT_EQ(operations[0].state, OperationState::kSucceeded);
  EXPECT_EQ(fake_->CallCount(FakeCall::kCreate), 1);
  EXPECT_EQ(fake_->MachinesCreated(), 1);

  // Browsers reach the ready product through the access proxy on its own
  // origin; a local system has no direct address.
  auto view = systems_->Get(alice_, system.id);
  ASSERT_TRUE(view) << view.error().message;
  EXPECT_FALSE(view->direct_url.has_value());
  ASSERT_TRUE(view->url.has_value());
  EXPECT_EQ(*view->url, "https://" + system.id + ".systems.localhost:8443/systems/" + system.id + "/");
  auto admin_view = systems_->Get(admin_, system.id);
  ASSERT_TRUE(admin_view) << admin_view.error().message;
  EXPECT_FALSE(admin_view->direct_url.has_value());
  EXPECT_EQ(admin_view->url, view->url);
}

TEST_F(SystemJobsTest, StopThenStartOpensSecondSession) {
  System system = MustCreateRunning(alice_, "lab");
  TimePoint started = clock_.Now();

  clock_.Advance(seconds(100));
  EXPECT_EQ(MustRequest(alice_, system.id, OperationAction::kStop).status,
            SystemStatus::kStopping);
  EXPECT_EQ(RunJobs(), 1);
  System stopped = GetSystem(system.id);
  EXPECT_EQ(stopped.status, SystemStatus::kStopped);
  EXPECT_EQ(stopped.vm_status, VmStatus::kStopped);
  EXPECT_EQ(stopped.product_status, ProductStatus::kStopped);
  EXPECT_TRUE(stopped.address.empty());
  EXPECT_FALSE(fake_->FindMachine(system.id)->running);
  auto sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  ASSERT_TRUE(sessions[0].end.has_value());
  EXPECT_EQ(*sessions[0].end, started + seconds(100));

  clock_.Advance(seconds(50));
  // The machine exists, so start goes straight to starting.
  EXPECT_EQ(MustRequest(alice_, system.id, OperationAction::kStart).status,
            SystemStatus::kStarting);
  EXPECT_EQ(RunJobs(), 1);
  System restarted = GetSystem(system.id);
  EXPECT_EQ(restarted.status, SystemStatus::kRunning);
  EXPECT_EQ(MachineOf(restarted), "m1");
  EXPECT_EQ(fake_->CallCount(FakeCall::kCreate), 1);
  EXPECT_EQ(fake_->CallCount(FakeCall::kStart), 1);
  EXPECT_EQ(fake_->MachinesCreated(), 1);

  sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[1].start, started + seconds(150));
  EXPECT_FALSE(sessions[1].end.has_value());
  auto operations = ListOperations(system.id);
  ASSERT_EQ(operations.size(), 3u);
  for (const auto& operation : operations) {
    EXPECT_EQ(operation.state, OperationState::kSucceeded)
        << OperationActionName(operation.action);
  }
}

TEST_F(SystemJobsTest, DeleteRemovesMachine) {
  System system = MustCreateRunning(alice_, "lab");
  EXPECT_EQ(MustRequest(alice_, system.id, OperationAction::kDelete).status,
            SystemStatus::kDeleting);
  EXPECT_EQ(RunJobs(), 1);

  System deleted = GetSystem(system.id);
  EXPECT_EQ(deleted.status, SystemStatus::kDeleted);
  EXPECT_EQ(deleted.vm_status, VmStatus::kTerminated);
  EXPECT_TRUE(deleted.provider_state.empty());
  ASSERT_TRUE(deleted.deleted_at.has_value());
  EXPECT_EQ(fake_->CallCount(FakeCall::kDelete), 1);
  EXPECT_EQ(fake_->MachineCount(), 0u);
  EXPECT_EQ(EventMessages(system.id).back(), "System deleted");
  EXPECT_TRUE(ListSessions(system.id)[0].end.has_value());
}

TEST_F(SystemJobsTest, DeleteOfFailedCreateSucceeds) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kFailsToStart;
  UseFake(options);
  System system = MustCreate(alice_, "lab");
  RunJobs();
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kFailed);

  MustRequest(alice_, system.id, OperationAction::kDelete);
  RunJobs();
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kDeleted);
}

// A crash after the provider made the machine but before the state was
// committed: the retried create adopts the machine instead of making another.
TEST_F(SystemJobsTest, RetriedCreateAdoptsMachine) {
  System system = MustCreate(alice_, "lab");
  Job job = ListActiveJobs(system.id).at(0);
  ASSERT_EQ(RunJobs(), 1);
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);

  auto reset = store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto lost, tx.GetSystem(system.id));
    lost->status = SystemStatus::kProvisioning;
    lost->provider_state.clear();
    lost->address.clear();
    PUDDLE_RETURN_IF_ERROR(tx.UpdateSystem(*lost));
    PUDDLE_ASSIGN_OR_RETURN(auto again, tx.GetJob(job.id));
    again->state = JobState::kQueued;
    again->claimed_by.clear();
    return tx.UpdateJob(*again);
  });
  ASSERT_TRUE(reset) << reset.error().message;

  ASSERT_EQ(RunJobs(), 1);
  System running = GetSystem(system.id);
  EXPECT_EQ(running.status, SystemStatus::kRunning);
  EXPECT_EQ(MachineOf(running), "m1");
  EXPECT_EQ(fake_->CallCount(FakeCall::kCreate), 2);
  EXPECT_EQ(fake_->MachinesCreated(), 1);
  EXPECT_EQ(fake_->MachineCount(), 1u);
  EXPECT_EQ(GetJob(job.id).attempt, 2);
  // Opening the session again while it is open adds no second one.
  EXPECT_EQ(ListSessions(system.id).size(), 1u);
}

TEST_F(SystemJobsTest, TransientStartFailuresRetryToRunning) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kFailsToStart;
  options.start_failures = 2;
  UseFake(options);
  System system = MustCreate(alice_, "lab");

  EXPECT_EQ(RunJobsAdvancingClock(), 3);
  System running = GetSystem(system.id);
  EXPECT_EQ(running.status, SystemStatus::kRunning);
  EXPECT_EQ(fake_->CallCount(FakeCall::kCreate), 3);
  EXPECT_EQ(fake_->MachinesCreated(), 1);
  auto messages = EventMessages(system.id);
  int retries = 0;
  for (const auto& message : messages) {
    if (message.rfind("Attempt ", 0) == 0) ++retries;
  }
  EXPECT_EQ(retries, 2);
}

TEST_F(SystemJobsTest, NeverReadyFailsAtStartTimeout) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kNeverReady;
  UseFake(options);
  SetStartTimeout(1);
  System system = MustCreate(alice_, "lab");
  Job job = ListActiveJobs(system.id).at(0);

  auto began = std::chrono::steady_clock::now();
  ASSERT_EQ(RunJobs(), 1);
  auto took = std::chrono::steady_clock::now() - began;
  EXPECT_GE(took, seconds(1));

  const std::string expected = "the product health check timed out after 1 s";
  System failed = GetSystem(system.id);
  EXPECT_EQ(failed.status, SystemStatus::kFailed);
  EXPECT_EQ(failed.product_status, ProductStatus::kUnhealthy);
  EXPECT_EQ(GetJob(job.id).state, JobState::kFailed);
  EXPECT_EQ(GetJob(job.id).last_error, expected);
  EXPECT_EQ(ListOperations(system.id)[0].error, expected);
  auto events = ListEvents(system.id);
  EXPECT_EQ(events.back().level, EventLevel::kError);
  EXPECT_EQ(events.back().message, "Failed: " + expected);
  EXPECT_GE(fake_->CallCount(FakeCall::kCheckProduct), 2);
  EXPECT_TRUE(ListSessions(system.id).empty());
}

TEST_F(SystemJobsTest, ProcessExitMakesSystemFailed) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kDiesAfterStart;
  options.exit_description = "exit status 3";
  options.last_log_lines = "Traceback (most recent call last):\nMemoryError";
  UseFake(options);
  System system = MustCreateRunning(alice_, "lab");

  clock_.Advance(seconds(40));
  auto changed = reconcile_->RunOnce();
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_EQ(*changed, 1);

  System failed = GetSystem(system.id);
  EXPECT_EQ(failed.status, SystemStatus::kFailed);
  EXPECT_EQ(failed.product_status, ProductStatus::kStopped);
  auto operations = ListOperations(system.id);
  ASSERT_EQ(operations.size(), 2u);
  EXPECT_EQ(operations[0].action, OperationAction::kFail);
  EXPECT_EQ(operations[0].reason, OperationReason::kProcessExit);
  EXPECT_FALSE(operations[0].requested_by.has_value());
  auto events = ListEvents(system.id);
  EXPECT_EQ(events.back().level, EventLevel::kError);
  EXPECT_NE(events.back().message.find("exit status 3"), std::string::npos)
      << events.back().message;
  EXPECT_NE(events.back().message.find("MemoryError"), std::string::npos)
      << events.back().message;
  auto sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  ASSERT_TRUE(sessions[0].end.has_value());
  EXPECT_EQ(*sessions[0].end, clock_.Now());

  // Recorded once: the next pass finds no running system.
  changed = reconcile_->RunOnce();
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, 0);
  EXPECT_EQ(ListOperations(system.id).size(), 2u);
}

TEST_F(SystemJobsTest, HostRestartMakesSystemStopped) {
  System system = MustCreateRunning(alice_, "lab");
  TimePoint running_since = clock_.Now();
  clock_.Advance(seconds(30));
  auto changed = reconcile_->RunOnce();
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, 0) << "a healthy system changed";

  clock_.Advance(seconds(20));
  TimePoint host_booted = clock_.Now();
  fake_->SimulateHostRestart(host_booted);
  clock_.Advance(seconds(30));
  changed = reconcile_->RunOnce();
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_EQ(*changed, 1);

  System stopped = GetSystem(system.id);
  EXPECT_EQ(stopped.status, SystemStatus::kStopped);
  auto operations = ListOperations(system.id);
  ASSERT_EQ(operations.size(), 2u);
  EXPECT_EQ(operations[0].action, OperationAction::kStop);
  EXPECT_EQ(operations[0].reason, OperationReason::kHostRestart);
  EXPECT_EQ(ListEvents(system.id).back().level, EventLevel::kWarning);
  auto sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  ASSERT_TRUE(sessions[0].end.has_value());
  // The session ends when the host went down, not when Puddle noticed.
  EXPECT_EQ(*sessions[0].end, host_booted);
  EXPECT_GT(*sessions[0].end, running_since);

  // The user starts it again on the same machine.
  MustRequest(alice_, system.id, OperationAction::kStart);
  RunJobs();
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  EXPECT_EQ(fake_->MachinesCreated(), 1);
  EXPECT_EQ(fake_->CallCount(FakeCall::kStart), 1);
}

TEST_F(SystemJobsTest, StopDuringHealthWaitSupersedesCreate) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kNeverReady;
  UseFake(options);
  SetStartTimeout(30);
  System system = MustCreate(alice_, "lab");
  Job create = ListActiveJobs(system.id).at(0);

  std::thread worker([&] { runner_->RunOne("core-test/1"); });
  bool waiting = WaitFor(system.id, [&](const System& current) {
    return current.status == SystemStatus::kStarting &&
           fake_->CallCount(FakeCall::kCheckProduct) >= 1;
  });
  if (waiting) {
    clock_.Advance(seconds(1));
    MustRequest(alice_, system.id, OperationAction::kStop);
  }
  worker.join();
  ASSERT_TRUE(waiting) << "the create job never reached its health wait";

  Job superseded = GetJob(create.id);
  EXPECT_EQ(superseded.state, JobState::kCancelled);
  EXPECT_EQ(RunJobs(), 1);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopped);
  EXPECT_FALSE(fake_->FindMachine(system.id)->running);

  auto operations = ListOperations(system.id);
  ASSERT_EQ(operations.size(), 2u);
  EXPECT_EQ(operations[0].action, OperationAction::kStop);
  EXPECT_EQ(operations[0].state, OperationState::kSucceeded);
  EXPECT_EQ(operations[1].action, OperationAction::kCreate);
  EXPECT_EQ(operations[1].state, OperationState::kFailed);
  EXPECT_EQ(operations[1].error, "superseded by a later request");
  EXPECT_TRUE(ListSessions(system.id).empty());
}

// Regression: a create that failed for good after the user asked to delete
// the system marked it failed, so the queued delete found it off its path and
// did nothing. The later request must decide where the system ends.
TEST_F(SystemJobsTest, DeleteDuringFailingCreateEndsDeleted) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kFailsToStart;
  // Create takes this long before it fails, which leaves time to ask for the delete.
  options.call_delay = milliseconds(300);
  UseFake(options);
  System system = MustCreate(alice_, "lab");
  Job create = ListActiveJobs(system.id).at(0);

  std::thread worker([&] { runner_->RunOne("core-test/1"); });
  bool creating = WaitFor(system.id, [&](const System& current) {
    return current.status == SystemStatus::kProvisioning &&
           fake_->CallCount(FakeCall::kCreate) == 1;
  });
  if (creating) {
    clock_.Advance(seconds(1));
    EXPECT_EQ(MustRequest(alice_, system.id, OperationAction::kDelete).status,
              SystemStatus::kDeleting);
  }
  worker.join();
  ASSERT_TRUE(creating) << "the create job never called the provider";

  EXPECT_EQ(GetJob(create.id).state, JobState::kFailed);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kDeleting);
  EXPECT_EQ(RunJobs(), 1);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kDeleted);
  auto operations = ListOperations(system.id);
  ASSERT_EQ(operations.size(), 2u);
  EXPECT_EQ(operations[0].action, OperationAction::kDelete);
  EXPECT_EQ(operations[0].state, OperationState::kSucceeded);
  EXPECT_EQ(operations[1].action, OperationAction::kCreate);
  EXPECT_EQ(operations[1].state, OperationState::kFailed);
}

TEST_F(SystemJobsTest, RebootAndRestartProductReturnToRunning) {
  System system = MustCreateRunning(alice_, "lab");
  EXPECT_EQ(MustRequest(alice_, system.id, OperationAction::kReboot).status,
            SystemStatus::kRebooting);
  EXPECT_EQ(RunJobs(), 1);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);

  EXPECT_EQ(MustRequest(admin_, system.id, OperationAction::kRestartProduct).status,
            SystemStatus::kStarting);
  EXPECT_EQ(RunJobs(), 1);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  EXPECT_EQ(fake_->CallCount(FakeCall::kReboot), 2);
  EXPECT_EQ(fake_->MachinesCreated(), 1);
}

// Regression: a transient Poll error while waiting for the health check ended
// the attempt, and with a poll that fails every second call no attempt could
// ever finish.
TEST_F(SystemJobsTest, FlakyPollStillReachesRunning) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kFlakyPoll;
  options.starting_checks = 3;
  UseFake(options);
  System system = MustCreate(alice_, "lab");

  RunJobsAdvancingClock();
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  EXPECT_EQ(fake_->MachinesCreated(), 1);

  // The reconcile loop skips a failed poll and changes nothing.
  for (int pass = 0; pass < 4; ++pass) {
    auto changed = reconcile_->RunOnce();
    ASSERT_TRUE(changed) << changed.error().message;
    EXPECT_EQ(*changed, 0);
  }
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
}

}  // namespace
}  // namespace puddle::testing
