// The idle loop over a real SQLite store, the fake provider and the real
// system service and jobs, driven by the fake clock: idle stops, warnings,
// keep-alive, max uptime, and the activity the API shows.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "core_fixture.h"
#include "services/activity/activity_tracker.h"
#include "workers/loops/idle_loop.h"

namespace puddle::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

constexpr const char* kIdleKernels =
    R"([{"id":"k1","name":"python3","last_activity":"2026-03-02T09:59:00.000000Z",)"
    R"("execution_state":"idle","connections":1}])";
constexpr const char* kBusyKernels =
    R"([{"id":"k1","name":"python3","last_activity":"2026-03-02T09:59:00.000000Z",)"
    R"("execution_state":"busy","connections":1}])";
constexpr const char* kExecuteRequest =
    R"({"header":{"msg_id":"m1","msg_type":"execute_request","username":"alice","session":"s1"},)"
    R"("metadata":{},"content":{"code":"1 + 1","silent":false},"buffers":[],"parent_header":{},)"
    R"("channel":"shell"})";
constexpr const char* kKernelInfoRequest =
    R"({"header":{"msg_id":"m2","msg_type":"kernel_info_request"},"metadata":{},"content":{},)"
    R"("buffers":[],"parent_header":{},"channel":"shell"})";

class IdleLoopTest : public CoreTest {
 protected:
  void SetUp() override {
    CoreTest::SetUp();
    tracker_ = std::make_unique<ActivityTracker>(clock_, ActivityPolicy{});
    systems_->SetActivityTracker(tracker_.get());
    idle_ = std::make_unique<IdleLoop>(*store_, providers_, *systems_, *tracker_);
  }

  void TearDown() override { systems_->SetActivityTracker(nullptr); }

  // Creates a running system of alice with `idle_minutes` (-1: never).
  System CreateRunning(const std::string& name, int64_t idle_minutes) {
    CreateSystemRequest request;
    request.name = name;
    request.product = kProduct;
    request.version = kVersion;
    request.system_type = kSystemType;
    request.idle_timeout_minutes = idle_minutes;
    auto created = systems_->Create(alice_, request);
    EXPECT_TRUE(created) << created.error().message;
    if (!created) return System();
    RunJobs();
    System system = GetSystem(created->system.id);
    EXPECT_EQ(system.status, SystemStatus::kRunning);
    started_ = clock_.Now();
    return system;
  }

  // Moves the clock to `offset` after the system started, one idle-loop run
  // every 30 seconds, calling `each` before every run. Stops early when the
  // system leaves running.
  void RunUntil(const std::string& id, std::chrono::milliseconds offset,
                const std::function<void()>& each = {}) {
    while (clock_.Now() < started_ + offset) {
      clock_.Advance(seconds(30));
      if (each) each();
      auto ran = idle_->RunOnce();
      ASSERT_TRUE(ran) << ran.error().message;
      if (GetSystem(id).status != SystemStatus::kRunning) return;
    }
  }

  SystemActivity ActivityOf(const std::string& id) {
    auto view = systems_->Get(alice_, id);
    EXPECT_TRUE(view) << view.error().message;
    if (!view || !view->activity) {
      ADD_FAILURE() << "system " << id << " has no activity";
      return SystemActivity();
    }
    return *view->activity;
  }

  std::vector<Event> Warnings(const std::string& id) {
    std::vector<Event> warnings;
    for (const auto& event : ListEvents(id)) {
      if (event.level == EventLevel::kWarning) warnings.push_back(event);
    }
    return warnings;
  }

  std::optional<Operation> LastStop(const std::string& id) {
    std::optional<Operation> stop;
    for (const auto& operation : ListOperations(id)) {
      if (operation.action == OperationAction::kStop) stop = operation;
    }
    return stop;
  }

  // Minutes since the system started.
  double Elapsed() const {
    return std::chrono::duration<double, std::ratio<60>>(clock_.Now() - started_).count();
  }

  void SetMaxUptime(int64_t minutes_value) {
    auto updated = store_->Write([&](Tx& tx) -> Status {
      PUDDLE_ASSIGN_OR_RETURN(auto type, tx.GetSystemType(kSystemType));
      type->max_uptime_minutes = minutes_value;
      return tx.UpdateSystemType(*type);
    });
    ASSERT_TRUE(updated) << updated.error().message;
  }

  std::unique_ptr<ActivityTracker> tracker_;
  std::unique_ptr<IdleLoop> idle_;
  TimePoint started_;
};

TEST_F(IdleLoopTest, SilentSystemStopsAfterTimeout) {
  System system = CreateRunning("silent", 30);
  fake_->SetProductAnswer(system.id, "api/kernels", kIdleKernels);

  RunUntil(system.id, minutes(25));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  SystemActivity activity = ActivityOf(system.id);
  EXPECT_EQ(activity.state, ActivityState::kIdle);
  EXPECT_EQ(activity.reason, "idle for 25 min: no browser activity, kernels idle");
  ASSERT_TRUE(activity.idle_stop_at);
  EXPECT_EQ(*activity.idle_stop_at, started_ + minutes(30));

  RunUntil(system.id, minutes(40));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  EXPECT_DOUBLE_EQ(Elapsed(), 30.0);
  auto stop = LastStop(system.id);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason, OperationReason::kIdle);
  EXPECT_FALSE(stop->requested_by);
  EXPECT_EQ(EventMessages(system.id).back(),
            "Stop requested: the idle time-out of 30 min passed. The system was idle for 30 min: "
            "no browser activity, kernels idle");

  RunJobs();
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopped);
  EXPECT_EQ(ActivityOf(system.id).state, ActivityState::kUnknown);
}

TEST_F(IdleLoopTest, WarningComesFirstAndOnce) {
  System system = CreateRunning("warned", 30);
  RunUntil(system.id, minutes(19) + seconds(30));
  EXPECT_TRUE(Warnings(system.id).empty());

  RunUntil(system.id, minutes(20));
  auto warnings = Warnings(system.id);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].message,
            "The system stops at 2026-03-02T10:30:00.000Z (in 10 min) because it has been idle "
            "for 20 min: no browser activity. Use it or keep it alive to postpone the stop.");

  RunUntil(system.id, minutes(35));
  EXPECT_EQ(Warnings(system.id).size(), 1u);
  auto events = ListEvents(system.id);
  size_t warning_index = 0, stop_index = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].level == EventLevel::kWarning) warning_index = i;
    if (events[i].message.rfind("Stop requested", 0) == 0) stop_index = i;
  }
  EXPECT_GT(stop_index, warning_index);
}

TEST_F(IdleLoopTest, BusyKernelKeepsItRunning) {
  System system = CreateRunning("training", 30);
  fake_->SetProductAnswer(system.id, "api/kernels", kBusyKernels);

  RunUntil(system.id, minutes(120));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  EXPECT_TRUE(Warnings(system.id).empty());
  SystemActivity activity = ActivityOf(system.id);
  EXPECT_EQ(activity.state, ActivityState::kBusy);
  EXPECT_EQ(activity.reason, "kernel busy for 1 h 59 min");
  EXPECT_FALSE(activity.idle_stop_at);
  ASSERT_EQ(activity.signals.size(), 2u);
  EXPECT_EQ(activity.signals[1].source, "product");
  EXPECT_TRUE(activity.signals[1].busy);

  // Once the kernel finishes, the idle clock starts from its last busy check.
  fake_->SetProductAnswer(system.id, "api/kernels", kIdleKernels);
  RunUntil(system.id, minutes(200));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  EXPECT_DOUBLE_EQ(Elapsed(), 150.0);
  EXPECT_EQ(Warnings(system.id).size(), 1u);
}

TEST_F(IdleLoopTest, ProductThatStopsAnsweringHoldsTheIdleStop) {
  System system = CreateRunning("loaded", 30);
  fake_->SetProductAnswer(system.id, "api/kernels", kIdleKernels);
  RunUntil(system.id, minutes(25));
  ASSERT_EQ(Warnings(system.id).size(), 1u);

  // The kernels read fails when the stop falls due, so the stop waits.
  fake_->ForgetProductAnswer(system.id, "api/kernels");
  RunUntil(system.id, minutes(34));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);

  // The read works again and reports a busy kernel, so the system stays up.
  fake_->SetProductAnswer(system.id, "api/kernels", kBusyKernels);
  RunUntil(system.id, minutes(60));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  EXPECT_EQ(ActivityOf(system.id).state, ActivityState::kBusy);
}

TEST_F(IdleLoopTest, ProductSilentForLongStopsAfterTheGrace) {
  System system = CreateRunning("hung", 30);
  fake_->SetProductAnswer(system.id, "api/kernels", kIdleKernels);
  RunUntil(system.id, minutes(25));
  fake_->ForgetProductAnswer(system.id, "api/kernels");
  RunUntil(system.id, minutes(60));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  // First unanswered check at 25.5 min: the stop due at 30 min waited the
  // 10 min grace from there.
  EXPECT_DOUBLE_EQ(Elapsed(), 35.5);
}

TEST_F(IdleLoopTest, PollsAndHeartbeatsDoNotCount) {
  System system = CreateRunning("open-tab", 30);
  std::string base = "/systems/" + system.id + "/";
  RunUntil(system.id, minutes(60), [&] {
    tracker_->OnProxiedRequest(system.id, "GET", base + "api/contents");
    tracker_->OnProxiedRequest(system.id, "GET", base + "api/sessions");
    tracker_->OnProxiedRequest(system.id, "GET", base + "api/kernels");
    tracker_->OnProxiedRequest(system.id, "GET", base + "api/terminals");
    tracker_->OnProxiedRequest(system.id, "GET", base + "api/status");
    tracker_->OnClientMessage(system.id, kKernelInfoRequest);
  });
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  EXPECT_DOUBLE_EQ(Elapsed(), 30.0);
  EXPECT_EQ(LastStop(system.id)->reason, OperationReason::kIdle);
}

TEST_F(IdleLoopTest, ExecuteRequestsCount) {
  System system = CreateRunning("notebook", 30);
  RunUntil(system.id, minutes(25));
  tracker_->OnClientMessage(system.id, kExecuteRequest);
  SystemActivity activity = ActivityOf(system.id);
  EXPECT_EQ(activity.state, ActivityState::kBusy);
  EXPECT_EQ(activity.reason, "browser activity under 1 min ago");
  ASSERT_TRUE(activity.idle_stop_at);
  EXPECT_EQ(*activity.idle_stop_at, started_ + minutes(55));

  RunUntil(system.id, minutes(90));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  EXPECT_DOUBLE_EQ(Elapsed(), 55.0);
  // One warning before the first idle stop time, then one before the real stop.
  EXPECT_EQ(Warnings(system.id).size(), 2u);
}

TEST_F(IdleLoopTest, BusyCpuKeepsItRunning) {
  System system = CreateRunning("cpu-bound", 30);
  double cpu_seconds = 0;
  RunUntil(system.id, minutes(60), [&] {
    cpu_seconds += 15;  // half a core
    fake_->SetCpuSeconds(system.id, cpu_seconds);
  });
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  SystemActivity activity = ActivityOf(system.id);
  EXPECT_EQ(activity.state, ActivityState::kBusy);
  EXPECT_EQ(activity.reason, "CPU 50 % for 58 min");

  // A trickle of CPU (1 %) is idle.
  RunUntil(system.id, minutes(150), [&] {
    cpu_seconds += 0.3;
    fake_->SetCpuSeconds(system.id, cpu_seconds);
  });
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  // CPU is averaged over 5 minutes: the reading at 64 min still holds a
  // minute of the load (10.8 %), and the idle time-out counts from there.
  EXPECT_DOUBLE_EQ(Elapsed(), 94.0);
}

TEST_F(IdleLoopTest, KeepAlivePushesTheStopBack) {
  System system = CreateRunning("kept", 30);
  RunUntil(system.id, minutes(25));
  ASSERT_EQ(Warnings(system.id).size(), 1u);

  auto kept = systems_->Request(alice_, system.id, OperationAction::kKeepAlive, 60);
  ASSERT_TRUE(kept) << kept.error().message;
  ASSERT_TRUE(kept->activity);
  ASSERT_TRUE(kept->activity->idle_stop_at);
  EXPECT_EQ(*kept->activity->idle_stop_at, started_ + minutes(85));
  auto operations = ListOperations(system.id);
  bool recorded = false;
  for (const auto& operation : operations) {
    if (operation.action == OperationAction::kKeepAlive) {
      recorded = true;
      EXPECT_EQ(operation.state, OperationState::kSucceeded);
      EXPECT_EQ(operation.reason, OperationReason::kUser);
    }
  }
  EXPECT_TRUE(recorded);
  EXPECT_EQ(EventMessages(system.id).back(),
            "Kept alive for 60 minutes by alice: no idle or max-uptime stop before "
            "2026-03-02T11:25:00.000Z");

  RunUntil(system.id, minutes(120));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  EXPECT_DOUBLE_EQ(Elapsed(), 85.0);
  // A new warning went out before the postponed stop.
  auto warnings = Warnings(system.id);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[1].time, started_ + minutes(75));
}

TEST_F(IdleLoopTest, KeepAliveIsCapped) {
  config_.max_keep_alive_minutes = 90;
  System system = CreateRunning("capped", 30);

  auto too_long = systems_->Request(alice_, system.id, OperationAction::kKeepAlive, 91);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(too_long.error().field, "minutes");

  // Without minutes it is the maximum; repeating it does not add up.
  ASSERT_TRUE(systems_->Request(alice_, system.id, OperationAction::kKeepAlive));
  clock_.Advance(minutes(10));
  auto again = systems_->Request(alice_, system.id, OperationAction::kKeepAlive);
  ASSERT_TRUE(again);
  ASSERT_TRUE(again->activity->idle_stop_at);
  EXPECT_EQ(*again->activity->idle_stop_at, started_ + minutes(100));

  // A later keep-alive replaces the earlier one; the idle time-out still applies.
  auto shorter = systems_->Request(alice_, system.id, OperationAction::kKeepAlive, 5);
  ASSERT_TRUE(shorter);
  EXPECT_EQ(*shorter->activity->idle_stop_at, started_ + minutes(30));
}

TEST_F(IdleLoopTest, KeepAliveOnlyWhileRunning) {
  System system = CreateRunning("stopped", 30);
  MustRequest(alice_, system.id, OperationAction::kStop);
  RunJobs();
  auto kept = systems_->Request(alice_, system.id, OperationAction::kKeepAlive, 10);
  ASSERT_FALSE(kept);
  EXPECT_EQ(kept.error().code, ErrorCode::kConflict);
}

TEST_F(IdleLoopTest, MaxUptimeStopsAfterWarning) {
  SetMaxUptime(60);
  System system = CreateRunning("long-run", -1);
  fake_->SetProductAnswer(system.id, "api/kernels", kBusyKernels);

  RunUntil(system.id, minutes(49) + seconds(30));
  EXPECT_TRUE(Warnings(system.id).empty());
  SystemActivity activity = ActivityOf(system.id);
  EXPECT_EQ(activity.state, ActivityState::kBusy);
  ASSERT_TRUE(activity.idle_stop_at);
  EXPECT_EQ(*activity.idle_stop_at, started_ + minutes(60));
  EXPECT_NE(activity.reason.find("max uptime of 1 h ends at 2026-03-02T11:00:00.000Z"),
            std::string::npos)
      << activity.reason;

  RunUntil(system.id, minutes(90));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopping);
  EXPECT_DOUBLE_EQ(Elapsed(), 60.0);
  auto warnings = Warnings(system.id);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].time, started_ + minutes(50));
  EXPECT_NE(warnings[0].message.find("max uptime"), std::string::npos);
  auto stop = LastStop(system.id);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->reason, OperationReason::kMaxUptime);
  EXPECT_EQ(EventMessages(system.id).back(),
            "Stop requested: the system ran for its system type's max uptime of 1 h");
}

TEST_F(IdleLoopTest, KeepAlivePostponesMaxUptime) {
  SetMaxUptime(60);
  System system = CreateRunning("extended", -1);
  RunUntil(system.id, minutes(55));
  ASSERT_TRUE(systems_->Request(alice_, system.id, OperationAction::kKeepAlive, 30));
  RunUntil(system.id, minutes(120));
  EXPECT_DOUBLE_EQ(Elapsed(), 85.0);
  EXPECT_EQ(LastStop(system.id)->reason, OperationReason::kMaxUptime);
  EXPECT_EQ(Warnings(system.id).size(), 2u);
}

TEST_F(IdleLoopTest, NeverTimeoutNeverStops) {
  System system = CreateRunning("forever", -1);
  RunUntil(system.id, minutes(600));
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  EXPECT_TRUE(Warnings(system.id).empty());
  SystemActivity activity = ActivityOf(system.id);
  EXPECT_EQ(activity.state, ActivityState::kIdle);
  EXPECT_EQ(activity.reason, "idle for 10 h: no browser activity");
  EXPECT_FALSE(activity.idle_stop_at);
}

TEST_F(IdleLoopTest, KeepAliveAtTheStopTime) {
  // The stop is due at this check, but a keep-alive came first.
  System system = CreateRunning("race", 30);
  RunUntil(system.id, minutes(29) + seconds(30));
  clock_.Advance(seconds(30));
  ASSERT_TRUE(systems_->Request(alice_, system.id, OperationAction::kKeepAlive, 10));
  auto ran = idle_->RunOnce();
  ASSERT_TRUE(ran);
  EXPECT_EQ(*ran, 0);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
}

}  // namespace
}  // namespace puddle::testing
