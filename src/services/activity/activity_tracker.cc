#include "services/activity/activity_tracker.h"

#include <vector>

#include "common/log.h"
#include "services/activity/jupyter_activity.h"

namespace puddle {
namespace {

// Entries written and untouched for this long are dropped from memory; the
// store keeps their time.
constexpr std::chrono::hours kForgetAfter{24};

}  // namespace

void ActivityTracker::OnProxiedRequest(const std::string& system_id, std::string_view method,
                                       std::string_view path) {
  if (jupyter::IsUserRequest(system_id, method, path)) RecordActivity(system_id);
}

void ActivityTracker::OnClientMessage(const std::string& system_id, std::string_view message) {
  if (jupyter::IsUserMessage(message)) RecordActivity(system_id);
}

void ActivityTracker::RecordActivity(const std::string& system_id) {
  TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  Entry& entry = entries_[system_id];
  entry.latest = std::max(entry.latest, now);
  entry.pending = true;
}

std::optional<TimePoint> ActivityTracker::LatestProxyActivity(const std::string& system_id) const {
  std::lock_guard lock(mutex_);
  auto found = entries_.find(system_id);
  if (found == entries_.end()) return std::nullopt;
  return found->second.latest;
}

Result<int> ActivityTracker::Flush(Store& store) {
  std::vector<std::pair<std::string, TimePoint>> pending;
  {
    std::lock_guard lock(mutex_);
    TimePoint forget_before = clock_.Now() - kForgetAfter;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.pending) {
        pending.emplace_back(it->first, it->second.latest);
        it->second.pending = false;
        ++it;
      } else if (it->second.latest < forget_before) {
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (pending.empty()) return 0;

  auto written = store.Write([&](Tx& tx) -> Status {
    for (const auto& [system_id, latest] : pending) {
      PUDDLE_RETURN_IF_ERROR(tx.MergeProxyActivity(system_id, latest));
    }
    return Ok();
  });
  if (!written) {
    // Pending again, unless newer activity already made them so.
    std::lock_guard lock(mutex_);
    for (const auto& [system_id, latest] : pending) entries_[system_id].pending = true;
    return tl::unexpected(written.error());
  }
  return static_cast<int>(pending.size());
}

Result<ActivityInputs> LoadActivityInputs(Tx& tx, const System& system) {
  ActivityInputs inputs;
  inputs.system = system;
  PUDDLE_ASSIGN_OR_RETURN(inputs.record, tx.GetActivity(system.id));
  PUDDLE_ASSIGN_OR_RETURN(auto sessions, tx.ListCostSessions(system.id));
  for (const auto& session : sessions) {
    if (!session.end) inputs.running_since = session.start;
  }
  PUDDLE_ASSIGN_OR_RETURN(auto type, tx.GetSystemType(system.system_type));
  if (type) inputs.max_uptime_minutes = type->max_uptime_minutes;
  return inputs;
}

Result<SystemActivity> ActivityTracker::Describe(Tx& tx, const System& system) const {
  if (system.status != SystemStatus::kRunning) {
    return EvaluateActivity(ActivityInputs{.system = system}, policy_, tx.Now());
  }
  PUDDLE_ASSIGN_OR_RETURN(auto inputs, LoadActivityInputs(tx, system));
  inputs.local_proxy_active_at = LatestProxyActivity(system.id);
  return EvaluateActivity(inputs, policy_, tx.Now());
}

}  // namespace puddle
