// IdleLoop: measures running systems' activity and stops the idle ones.
//
// Each run reads two signals of every running system and stores them: the
// product signal (a Jupyter product's GET api/kernels through the provider,
// where a busy kernel is work) and the CPU signal (the CPU time of the
// system's processes, averaged over the configured window). Then it
// evaluates the system's activity (activity.h). Once the warning for a
// pending idle or max-uptime stop is due, it writes a warning event, once per
// announced stop. When the stop is due and was announced, it requests it
// (reason idle or max-uptime) with an event saying why. It re-checks under
// the system's row lock, so a keep-alive committed meanwhile wins. A stop that is due but was never
// announced (Puddle was down during the warning) is announced first and
// requested at the next run.
//
// Runs in one process at a time (a leased PeriodicLoop). Thread-compatible:
// RunOnce is called from one thread.
//
// An idle stop waits while reads of a Jupyter product's kernels API fail,
// because a product too loaded to respond may be busy. It waits at most
// kProductSilenceGrace from the first failed read. Max-uptime stops never wait.
//
// Limitations: CPU samples live in the memory of the process holding the
// lease, so after the lease moves the CPU signal is missing until a window's
// worth of samples (at least a minute) has been taken.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <string>

#include "services/activity/activity_tracker.h"
#include "services/systems/system_service.h"
#include "storage/store.h"

namespace puddle {

class IdleLoop {
 public:
  IdleLoop(Store& store, const ProviderMap& providers, SystemService& systems,
           const ActivityTracker& tracker)
      : store_(store), providers_(providers), systems_(systems), tracker_(tracker) {}

  // Checks every running system once. Returns how many stops it requested.
  Result<int> RunOnce();

 private:
  struct CpuSample {
    TimePoint time;
    double seconds = 0;
  };

  // Reads the product and CPU signals into `record`. MeasureProduct returns
  // false when the read of a Jupyter product's kernels failed.
  bool MeasureProduct(const System& system, Provider& provider, TimePoint now,
                      ActivityRecord& record);
  void MeasureCpu(const System& system, Provider& provider, TimePoint now,
                  ActivityRecord& record);
  Status Warn(const System& system, const SystemActivity& activity, TimePoint now);
  Result<bool> RequestStop(const System& system);

  Store& store_;
  const ProviderMap& providers_;
  SystemService& systems_;
  const ActivityTracker& tracker_;
  // Per running system, oldest first: the newest sample at or before the
  // window's start, then every later one.
  std::map<std::string, std::deque<CpuSample>> cpu_samples_;
  // Time of the first failed kernels read, per running system whose reads still fail.
  std::map<std::string, TimePoint> product_silent_since_;
};

// Longest wait of an idle stop for a product whose kernels reads fail.
inline constexpr std::chrono::minutes kProductSilenceGrace{10};

// The words of an automatic stop's event, from the activity that caused it.
std::string StopMessage(const SystemActivity& activity, const System& system,
                        std::optional<int64_t> max_uptime_minutes);

}  // namespace puddle
