#include "services/activity/activity.h"

#include <algorithm>
#include <cmath>

namespace puddle {

using std::chrono::milliseconds;
using std::chrono::minutes;

std::string_view ActivityStateName(ActivityState state) {
  switch (state) {
    case ActivityState::kBusy: return "busy";
    case ActivityState::kIdle: return "idle";
    case ActivityState::kUnknown: return "unknown";
  }
  return "unknown";
}

std::string FormatDuration(milliseconds duration) {
  int64_t total_minutes = std::chrono::duration_cast<minutes>(duration).count();
  if (total_minutes < 1) return "under 1 min";
  if (total_minutes < 60) return std::to_string(total_minutes) + " min";
  std::string text = std::to_string(total_minutes / 60) + " h";
  if (total_minutes % 60 != 0) text += " " + std::to_string(total_minutes % 60) + " min";
  return text;
}

milliseconds WarningLead(const ActivityPolicy& policy, milliseconds timeout) {
  return std::min<milliseconds>(policy.warning, timeout / 2);
}

namespace {

std::optional<TimePoint> Later(std::optional<TimePoint> a, std::optional<TimePoint> b) {
  if (!a) return b;
  if (!b) return a;
  return std::max(*a, *b);
}

std::string Percent(double value) {
  return std::to_string(static_cast<int64_t>(std::lround(value))) + " %";
}

// A reading taken in the current run and recently enough to trust.
bool Fresh(const std::optional<TimePoint>& checked_at, TimePoint run_start,
           const ActivityPolicy& policy, TimePoint now) {
  return checked_at && *checked_at >= run_start && now - *checked_at <= policy.reading_max_age;
}

// The words for one busy signal, and when its busy spell began.
struct BusyPart {
  std::string words;
  TimePoint since;
};

}  // namespace

SystemActivity EvaluateActivity(const ActivityInputs& inputs, const ActivityPolicy& policy,
                                TimePoint now) {
  const System& system = inputs.system;
  const ActivityRecord& record = inputs.record;
  SystemActivity activity;
  if (system.status != SystemStatus::kRunning) {
    activity.reason = "the system is not running";
    return activity;
  }

  // The run began when the cost session opened; the latest launch (a reboot)
  // also restarts the idle clock, since the product starts afresh.
  TimePoint run_start = inputs.running_since.value_or(system.last_activity_at.value_or(system.updated_at));
  TimePoint idle_base = std::max(run_start, system.last_activity_at.value_or(run_start));

  std::vector<BusyPart> busy_parts;
  std::vector<std::string> idle_parts;

  // The proxy: people using the product through Puddle.
  ActivitySignal proxy{"proxy", false, Later(record.proxy_active_at, inputs.local_proxy_active_at)};
  // Within a short time-out the window shrinks, so a system is never shown
  // busy at the moment it stops for being idle.
  milliseconds proxy_window = policy.proxy_busy_window;
  if (system.idle_timeout_minutes > 0) {
    proxy_window = std::min<milliseconds>(proxy_window, minutes(system.idle_timeout_minutes) / 2);
  }
  proxy.busy = proxy.last_active_at && now - *proxy.last_active_at < proxy_window;
  if (proxy.busy) {
    busy_parts.push_back({"browser activity " + FormatDuration(now - *proxy.last_active_at) + " ago",
                          *proxy.last_active_at});
  } else {
    idle_parts.push_back("no browser activity");
  }
  activity.signals.push_back(proxy);

  // The product: Jupyter's kernels.
  if (record.product_checked_at && *record.product_checked_at >= run_start) {
    ActivitySignal product{"product", false, record.product_active_at};
    product.busy = record.product_busy.value_or(false) &&
                   Fresh(record.product_checked_at, run_start, policy, now);
    if (product.busy) {
      TimePoint since = record.product_busy_since.value_or(*record.product_checked_at);
      busy_parts.push_back({"kernel busy for " + FormatDuration(now - since), since});
    } else {
      idle_parts.push_back("kernels idle");
    }
    activity.signals.push_back(product);
  }

  // CPU time of the system's processes.
  if (record.cpu_checked_at && *record.cpu_checked_at >= run_start) {
    ActivitySignal cpu{"cpu", false, record.cpu_active_at};
    cpu.busy = record.cpu_busy.value_or(false) && Fresh(record.cpu_checked_at, run_start, policy, now);
    std::string percent = Percent(record.cpu_percent.value_or(0));
    if (cpu.busy) {
      TimePoint since = record.cpu_busy_since.value_or(*record.cpu_checked_at);
      busy_parts.push_back({"CPU " + percent + " for " + FormatDuration(now - since), since});
    } else {
      idle_parts.push_back("CPU " + percent);
    }
    activity.signals.push_back(cpu);
  }

  // Idle time counts from the latest work any signal saw.
  TimePoint last_active = idle_base;
  for (const auto& signal : activity.signals) {
    if (signal.last_active_at) last_active = std::max(last_active, std::min(*signal.last_active_at, now));
  }

  // Product and CPU work hold the idle clock at now; a browser's latest
  // request only restarts it.
  bool working = false;
  for (const auto& signal : activity.signals) working = working || (signal.busy && signal.source != "proxy");
  if (!busy_parts.empty()) {
    activity.state = ActivityState::kBusy;
    TimePoint since = busy_parts.front().since;
    std::string words;
    for (const auto& part : busy_parts) {
      since = std::min(since, part.since);
      words += (words.empty() ? "" : ", ") + part.words;
    }
    activity.since = since;
    activity.reason = words;
  } else {
    activity.state = ActivityState::kIdle;
    activity.since = last_active;
    activity.idle_for = now - last_active;
    std::string words;
    for (const auto& part : idle_parts) words += (words.empty() ? "" : ", ") + part;
    activity.reason = "idle for " + FormatDuration(now - last_active) + ": " + words;
  }

  // A keep-alive made during this run postpones either stop.
  std::optional<TimePoint> keep_alive_until;
  if (record.keep_alive_at && record.keep_alive_until && *record.keep_alive_at >= run_start) {
    keep_alive_until = record.keep_alive_until;
  }

  std::optional<TimePoint> idle_stop;
  milliseconds idle_timeout{0};
  if (system.idle_timeout_minutes > 0 && !working) {
    idle_timeout = minutes(system.idle_timeout_minutes);
    idle_stop = Later(last_active + idle_timeout, keep_alive_until);
  }
  std::optional<TimePoint> uptime_stop;
  milliseconds max_uptime{0};
  if (inputs.max_uptime_minutes && *inputs.max_uptime_minutes > 0) {
    max_uptime = minutes(*inputs.max_uptime_minutes);
    uptime_stop = Later(run_start + max_uptime, keep_alive_until);
  }

  milliseconds lead{0};
  if (uptime_stop && (!idle_stop || *uptime_stop < *idle_stop)) {
    activity.idle_stop_at = uptime_stop;
    activity.stop_reason = OperationReason::kMaxUptime;
    lead = WarningLead(policy, max_uptime);
    activity.reason += "; its system type's max uptime of " + FormatDuration(max_uptime) +
                       " ends at " + FormatTime(*uptime_stop);
  } else if (idle_stop) {
    activity.idle_stop_at = idle_stop;
    activity.stop_reason = OperationReason::kIdle;
    lead = WarningLead(policy, idle_timeout);
  }
  if (activity.idle_stop_at) {
    activity.warn_at = *activity.idle_stop_at - lead;
    activity.warned = record.warned_at && *record.warned_at >= run_start &&
                      *record.warned_at >= *activity.warn_at &&
                      record.warned_reason == OperationReasonName(*activity.stop_reason);
  }
  return activity;
}

}  // namespace puddle
