// ActivityTracker: the ActivitySink of one Puddle process, and the view of a
// system's activity that the API shows.
//
// The proxy calls OnProxiedRequest and OnClientMessage on its I/O threads.
// The tracker keeps only the latest counted time per system in memory: one
// map entry under a mutex, and no I/O. Flush, called every ~30 s by a periodic
// loop in every process, writes each system seen since the previous flush
// once, as the maximum of the stored time and its own, because several
// processes may each have seen part of a system's traffic.
//
// Which requests and messages count: see jupyter_activity.h. Every product
// is judged by Jupyter's rules for now, which for another product only
// discounts paths it does not serve.
//
// Limitations: activity another process saw reaches this one at its next
// flush, so an idle stop may come up to one flush interval after the latest
// request seen elsewhere.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "services/activity/activity.h"
#include "services/activity/activity_sink.h"
#include "storage/store.h"

namespace puddle {

class ActivityTracker final : public ActivitySink {
 public:
  ActivityTracker(const Clock& clock, ActivityPolicy policy)
      : clock_(clock), policy_(policy) {}

  void OnProxiedRequest(const std::string& system_id, std::string_view method,
                        std::string_view path) override;
  void OnClientMessage(const std::string& system_id, std::string_view message) override;

  // Counts activity on `system_id` now, as a counted request would.
  void RecordActivity(const std::string& system_id);

  // The latest counted activity this process saw, written or not.
  std::optional<TimePoint> LatestProxyActivity(const std::string& system_id) const;

  // Writes every system with activity since the previous flush, one
  // statement each, in one transaction. Returns how many systems it wrote.
  // On failure the entries stay pending for the next flush.
  Result<int> Flush(Store& store);

  // The activity of `system` as the API shows it, read inside `tx`.
  Result<SystemActivity> Describe(Tx& tx, const System& system) const;

  const ActivityPolicy& policy() const { return policy_; }

 private:
  struct Entry {
    TimePoint latest;
    bool pending = false;  // not written since it changed
  };

  const Clock& clock_;
  const ActivityPolicy policy_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mutex_)
};

// Loads what EvaluateActivity needs about `system` inside `tx`.
Result<ActivityInputs> LoadActivityInputs(Tx& tx, const System& system);

}  // namespace puddle
