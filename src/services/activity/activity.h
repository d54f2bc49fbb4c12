// Activity: whether a running system is at work, why Puddle thinks so, and
// when it stops on its own (idle time-out or its system type's max uptime).
//
// Three signals feed it: the access proxy (a person using the product), the
// product's own report (a Jupyter kernel executing) and the CPU time of the
// system's processes. A system is idle only while every signal is quiet, and
// its idle time counts from the latest moment any signal saw work, or from
// when it began running. EvaluateActivity is a pure function of what the
// store and the proxy know, so the API and the idle loop agree.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "model/activity.h"
#include "model/system.h"

namespace puddle {

enum class ActivityState { kBusy, kIdle, kUnknown };

std::string_view ActivityStateName(ActivityState state);

struct ActivitySignal {
  std::string source;  // "proxy", "product" or "cpu"
  bool busy = false;
  std::optional<TimePoint> last_active_at;
};

struct SystemActivity {
  ActivityState state = ActivityState::kUnknown;
  std::optional<TimePoint> since;  // when the current state began
  std::string reason;              // in words, with durations
  // The earliest pending automatic stop (idle or max uptime), after any
  // keep-alive; nullopt when none is pending.
  std::optional<TimePoint> idle_stop_at;
  std::optional<OperationReason> stop_reason;  // kIdle or kMaxUptime with idle_stop_at
  // When the warning for that stop is due, and whether it went out.
  std::optional<TimePoint> warn_at;
  bool warned = false;
  // How long the system has been idle; zero while it is busy.
  std::chrono::milliseconds idle_for{0};
  std::vector<ActivitySignal> signals;
};

// The thresholds from the configuration (idleTimeout.*).
struct ActivityPolicy {
  // Lead time of the stop warning; shortened to half the time-out for short ones.
  std::chrono::minutes warning{10};
  // CPU use above this percent of one core, averaged over cpu_window, is busy.
  double cpu_busy_percent = 10;
  std::chrono::minutes cpu_window{5};
  // A proxy request this recent (at most half the idle time-out) shows the
  // proxy signal as busy.
  std::chrono::minutes proxy_busy_window{2};
  // A product or CPU reading older than this no longer counts as busy (the
  // checks stopped, say because the product stopped answering).
  std::chrono::minutes reading_max_age{5};
};

struct ActivityInputs {
  System system;
  ActivityRecord record;
  // Start of the open cost session: reboots and product restarts keep it.
  std::optional<TimePoint> running_since;
  std::optional<int64_t> max_uptime_minutes;  // of the system's type
  // Proxy activity this process saw and has not necessarily written yet.
  std::optional<TimePoint> local_proxy_active_at;
};

SystemActivity EvaluateActivity(const ActivityInputs& inputs, const ActivityPolicy& policy,
                                TimePoint now);

// The lead time of the warning before a stop whose time-out is `timeout`.
std::chrono::milliseconds WarningLead(const ActivityPolicy& policy,
                                      std::chrono::milliseconds timeout);

// "under 1 min", "12 min", "2 h", "1 h 5 min".
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace puddle
