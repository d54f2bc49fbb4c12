// What counts as activity, how the activity of a system is judged, and how
// the tracker coalesces proxy activity before writing it.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "common/clock.h"
#include "services/activity/activity.h"
#include "services/activity/activity_tracker.h"
#include "services/activity/jupyter_activity.h"
#include "storage/sqlite/sqlite_database.h"
#include "storage/store.h"

namespace puddle {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

TimePoint At(const char* text) { return *ParseTime(text); }

TEST(JupyterRequests, BackgroundPollsDoNotCount) {
  const std::string id = "sys1";
  for (const char* path : {
           "/systems/sys1/api/contents", "/systems/sys1/api/contents/work/a.ipynb",
           "/systems/sys1/api/sessions", "/systems/sys1/api/kernels",
           "/systems/sys1/api/kernels/5f1c/channels", "/systems/sys1/api/terminals",
           "/systems/sys1/api/status", "/systems/sys1/terminals/websocket/1",
           "/systems/sys1/static/notebook/js/main.min.js", "/systems/sys1/custom/custom.css",
           "/systems/sys1/nbextensions/widgets/notebook/js/extension.js",
           "/systems/sys1/kernelspecs/python3/logo-64x64.png", "/systems/sys1/favicon.ico",
           "/api/kernels", "/api/contents", "/static/base/images/favicon.ico"}) {
    EXPECT_FALSE(jupyter::IsUserRequest(id, "GET", path)) << path;
  }
}

TEST(JupyterRequests, PagesAndWritesCount) {
  const std::string id = "sys1";
  EXPECT_TRUE(jupyter::IsUserRequest(id, "GET", "/systems/sys1/tree"));
  EXPECT_TRUE(jupyter::IsUserRequest(id, "GET", "/systems/sys1/notebooks/a.ipynb"));
  EXPECT_TRUE(jupyter::IsUserRequest(id, "GET", "/systems/sys1/"));
  EXPECT_TRUE(jupyter::IsUserRequest(id, "GET", "/tree"));
  EXPECT_TRUE(jupyter::IsUserRequest(id, "PUT", "/systems/sys1/api/contents/a.ipynb"));
  EXPECT_TRUE(jupyter::IsUserRequest(id, "POST", "/systems/sys1/api/sessions"));
  EXPECT_TRUE(jupyter::IsUserRequest(id, "DELETE", "/systems/sys1/api/kernels/5f1c"));
  // A path that only starts like a background one is a page.
  EXPECT_TRUE(jupyter::IsUserRequest(id, "GET", "/systems/sys1/api/contentsx"));
  EXPECT_FALSE(jupyter::IsUserRequest(id, "OPTIONS", "/systems/sys1/tree"));
}

TEST(JupyterMessages, KernelMessageTypes) {
  EXPECT_TRUE(jupyter::IsUserMessage(
      R"({"header":{"msg_id":"1","msg_type":"execute_request","session":"s"},"metadata":{},)"
      R"json("content":{"code":"import time; time.sleep(30)"},"buffers":[],"parent_header":{},)json"
      R"("channel":"shell"})"));
  EXPECT_TRUE(jupyter::IsUserMessage(
      R"({ "header" : { "msg_type" : "input_reply" }, "content": {"value": "y"}})"));
  EXPECT_TRUE(jupyter::IsUserMessage(R"({"header":{"msg_type":"comm_msg"},"content":{}})"));
  EXPECT_FALSE(jupyter::IsUserMessage(
      R"({"header":{"msg_id":"2","msg_type":"kernel_info_request"},"content":{}})"));
  EXPECT_FALSE(jupyter::IsUserMessage(R"({"header":{"msg_type":"comm_info_request"}})"));
  EXPECT_FALSE(jupyter::IsUserMessage(R"({"header":{"msg_type":"is_complete_request"}})"));
}

TEST(JupyterMessages, MsgTypeOutsideHeaderIgnored) {
  // A msg_type in the content, or a header nested elsewhere, is not the message's type.
  EXPECT_FALSE(jupyter::IsUserMessage(
      R"({"metadata":{"header":{"msg_type":"execute_request"}},"header":{"msg_type":"kernel_info_request"}})"));
  EXPECT_FALSE(jupyter::IsUserMessage(
      R"({"header":{"session":"execute_request","msg_type":"history_request"}})"));
  EXPECT_TRUE(jupyter::IsUserMessage(
      R"({"content":{"code":"x = \"{\\\"header\\\"\" "},"header":{"msg_type":"execute_request"}})"));
}

TEST(JupyterMessages, MalformedAndOtherProtocols) {
  EXPECT_FALSE(jupyter::IsUserMessage(""));
  EXPECT_FALSE(jupyter::IsUserMessage("ping"));
  EXPECT_FALSE(jupyter::IsUserMessage(R"({"header":{"msg_type":"execute_req)"));
  EXPECT_FALSE(jupyter::IsUserMessage(R"({"header":)"));
  EXPECT_FALSE(jupyter::IsUserMessage(std::string("\x00\x01\x02", 3)));
  // terminado: typing counts, resizing does not.
  EXPECT_TRUE(jupyter::IsUserMessage(R"(["stdin", "ls -l\r"])"));
  EXPECT_FALSE(jupyter::IsUserMessage(R"(["set_size", 24, 80, 600, 800])"));
}

TEST(JupyterKernels, ParsesBusyAndLastActivity) {
  auto report = jupyter::ParseKernels(
      R"([{"id":"a","name":"python3","last_activity":"2026-03-02T10:05:00.123456Z",)"
      R"("execution_state":"idle","connections":1},)"
      R"({"id":"b","name":"python3","last_activity":"2026-03-02T10:07:30.000000Z",)"
      R"("execution_state":"busy","connections":0}])");
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->kernels, 2);
  EXPECT_TRUE(report->busy);
  ASSERT_TRUE(report->last_activity);
  EXPECT_EQ(FormatTime(*report->last_activity), "2026-03-02T10:07:30.000Z");

  auto none = jupyter::ParseKernels("[]");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->kernels, 0);
  EXPECT_FALSE(none->busy);
  EXPECT_FALSE(none->last_activity);
  EXPECT_FALSE(jupyter::ParseKernels(R"({"message":"Forbidden"})"));
}

TEST(ActivityText, FormatsDurations) {
  EXPECT_EQ(FormatDuration(seconds(30)), "under 1 min");
  EXPECT_EQ(FormatDuration(minutes(12)), "12 min");
  EXPECT_EQ(FormatDuration(minutes(120)), "2 h");
  EXPECT_EQ(FormatDuration(minutes(65)), "1 h 5 min");
}

// A running system that began at 10:00 with a 30-minute idle time-out.
ActivityInputs RunningInputs() {
  ActivityInputs inputs;
  inputs.system.id = "sys1";
  inputs.system.status = SystemStatus::kRunning;
  inputs.system.idle_timeout_minutes = 30;
  inputs.system.last_activity_at = At("2026-03-02T10:00:00Z");
  inputs.running_since = At("2026-03-02T10:00:00Z");
  inputs.record.system_id = "sys1";
  return inputs;
}

TEST(EvaluateActivity, SilentSystemIdleSinceStart) {
  ActivityInputs inputs = RunningInputs();
  inputs.record.product_busy = false;
  inputs.record.product_checked_at = At("2026-03-02T10:24:30Z");
  inputs.record.cpu_busy = false;
  inputs.record.cpu_percent = 0.2;
  inputs.record.cpu_checked_at = At("2026-03-02T10:24:30Z");
  SystemActivity activity = EvaluateActivity(inputs, ActivityPolicy{}, At("2026-03-02T10:25:00Z"));

  EXPECT_EQ(activity.state, ActivityState::kIdle);
  EXPECT_EQ(activity.reason, "idle for 25 min: no browser activity, kernels idle, CPU 0 %");
  ASSERT_TRUE(activity.since);
  EXPECT_EQ(FormatTime(*activity.since), "2026-03-02T10:00:00.000Z");
  ASSERT_TRUE(activity.idle_stop_at);
  EXPECT_EQ(FormatTime(*activity.idle_stop_at), "2026-03-02T10:30:00.000Z");
  EXPECT_EQ(activity.stop_reason, OperationReason::kIdle);
  ASSERT_TRUE(activity.warn_at);
  EXPECT_EQ(FormatTime(*activity.warn_at), "2026-03-02T10:20:00.000Z");
  EXPECT_FALSE(activity.warned);
  ASSERT_EQ(activity.signals.size(), 3u);
  EXPECT_EQ(activity.signals[0].source, "proxy");
  EXPECT_EQ(activity.signals[1].source, "product");
  EXPECT_EQ(activity.signals[2].source, "cpu");
}

TEST(EvaluateActivity, BusyKernelHasNoPendingStop) {
  ActivityInputs inputs = RunningInputs();
  inputs.record.product_busy = true;
  inputs.record.product_busy_since = At("2026-03-02T10:13:00Z");
  inputs.record.product_active_at = At("2026-03-02T10:24:30Z");
  inputs.record.product_checked_at = At("2026-03-02T10:24:30Z");
  SystemActivity activity = EvaluateActivity(inputs, ActivityPolicy{}, At("2026-03-02T10:25:00Z"));

  EXPECT_EQ(activity.state, ActivityState::kBusy);
  EXPECT_EQ(activity.reason, "kernel busy for 12 min");
  EXPECT_FALSE(activity.idle_stop_at);
  ASSERT_TRUE(activity.since);
  EXPECT_EQ(FormatTime(*activity.since), "2026-03-02T10:13:00.000Z");
}

TEST(EvaluateActivity, StaleBusyReadingIsIgnored) {
  ActivityInputs inputs = RunningInputs();
  inputs.record.product_busy = true;
  inputs.record.product_busy_since = At("2026-03-02T10:01:00Z");
  inputs.record.product_active_at = At("2026-03-02T10:05:00Z");
  inputs.record.product_checked_at = At("2026-03-02T10:05:00Z");
  SystemActivity activity = EvaluateActivity(inputs, ActivityPolicy{}, At("2026-03-02T10:25:00Z"));

  EXPECT_EQ(activity.state, ActivityState::kIdle);
  ASSERT_TRUE(activity.idle_stop_at);
  EXPECT_EQ(FormatTime(*activity.idle_stop_at), "2026-03-02T10:35:00.000Z");
}

TEST(EvaluateActivity, ReadingsOfAnEarlierRunIgnored) {
  ActivityInputs inputs = RunningInputs();
  inputs.record.proxy_active_at = At("2026-03-01T09:00:00Z");
  inputs.record.product_busy = true;
  inputs.record.product_checked_at = At("2026-03-01T09:00:00Z");
  inputs.record.keep_alive_at = At("2026-03-01T09:00:00Z");
  inputs.record.keep_alive_until = At("2026-03-02T12:00:00Z");
  SystemActivity activity = EvaluateActivity(inputs, ActivityPolicy{}, At("2026-03-02T10:10:00Z"));

  EXPECT_EQ(activity.state, ActivityState::kIdle);
  ASSERT_EQ(activity.signals.size(), 1u);
  ASSERT_TRUE(activity.idle_stop_at);
  EXPECT_EQ(FormatTime(*activity.idle_stop_at), "2026-03-02T10:30:00.000Z");
}

TEST(EvaluateActivity, ShortTimeoutWarnsAtHalfTime) {
  ActivityInputs inputs = RunningInputs();
  inputs.system.idle_timeout_minutes = 1;
  SystemActivity activity = EvaluateActivity(inputs, ActivityPolicy{}, At("2026-03-02T10:00:10Z"));
  ASSERT_TRUE(activity.warn_at);
  EXPECT_EQ(FormatTime(*activity.warn_at), "2026-03-02T10:00:30.000Z");
}

TEST(EvaluateActivity, NotRunningIsUnknown) {
  ActivityInputs inputs = RunningInputs();
  inputs.system.status = SystemStatus::kStopped;
  SystemActivity activity = EvaluateActivity(inputs, ActivityPolicy{}, At("2026-03-02T10:25:00Z"));
  EXPECT_EQ(activity.state, ActivityState::kUnknown);
  EXPECT_EQ(activity.reason, "the system is not running");
  EXPECT_FALSE(activity.idle_stop_at);
  EXPECT_TRUE(activity.signals.empty());
}

class TrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("puddle-activity-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto database = sql::SqliteDatabase::Open((directory_ / "puddle.db").string());
    ASSERT_TRUE(database) << database.error().message;
    store_ = std::make_unique<Store>(std::move(*database), clock_);
    auto migrated = store_->Migrate();
    ASSERT_TRUE(migrated) << migrated.error().message;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }

  std::optional<TimePoint> StoredProxyActivity(const std::string& id) {
    auto record = store_->ReadValue<ActivityRecord>([&](Tx& tx) { return tx.GetActivity(id); });
    EXPECT_TRUE(record) << record.error().message;
    return record ? record->proxy_active_at : std::nullopt;
  }

  std::filesystem::path directory_;
  FakeClock clock_{At("2026-03-02T10:00:00Z")};
  std::unique_ptr<Store> store_;
};

TEST_F(TrackerTest, FlushWritesOncePerSystem) {
  ActivityTracker tracker(clock_, ActivityPolicy{});
  for (int i = 0; i < 1000; ++i) {
    tracker.OnProxiedRequest("sys1", "GET", "/systems/sys1/notebooks/a.ipynb");
    tracker.OnProxiedRequest("sys2", "PUT", "/systems/sys2/api/contents/a.ipynb");
    clock_.Advance(std::chrono::milliseconds(10));
  }
  // Polls between flushes change nothing.
  tracker.OnProxiedRequest("sys3", "GET", "/systems/sys3/api/kernels");
  EXPECT_FALSE(tracker.LatestProxyActivity("sys3"));

  auto written = tracker.Flush(*store_);
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_EQ(*written, 2);
  EXPECT_EQ(StoredProxyActivity("sys1"), tracker.LatestProxyActivity("sys1"));
  EXPECT_EQ(FormatTime(*StoredProxyActivity("sys2")), "2026-03-02T10:00:09.990Z");

  auto again = tracker.Flush(*store_);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0);
}

TEST_F(TrackerTest, FlushKeepsTheLatestOfSeveralProcesses) {
  ActivityTracker first(clock_, ActivityPolicy{});
  ActivityTracker second(clock_, ActivityPolicy{});
  first.OnClientMessage("sys1", R"({"header":{"msg_type":"kernel_info_request"}})");
  second.OnProxiedRequest("sys1", "GET", "/systems/sys1/tree");
  clock_.Advance(minutes(5));
  first.OnClientMessage("sys1", R"({"header":{"msg_type":"execute_request"}})");

  // The process with the newer time writes first; the older write does not lower it.
  ASSERT_TRUE(first.Flush(*store_));
  ASSERT_TRUE(second.Flush(*store_));
  EXPECT_EQ(FormatTime(*StoredProxyActivity("sys1")), "2026-03-02T10:05:00.000Z");
}

}  // namespace
}  // namespace puddle
