// PeriodicLoop: runs a body every interval on its own thread, in at most one
// process of the installation at a time.
//
// Before each run the loop takes or renews its lease (Tx::TryAcquireLease,
// named after the loop) for this process, and skips the run while another
// process has the lease. A process releases its leases when it stops. When it
// dies instead, its leases expire after `lease_ttl`. Without a lease store
// (the embedded SQLite store, which one process owns), every run goes ahead.
//
// Limitations: a run that lasts longer than `lease_ttl` may overlap the first
// run of another process that took the expired lease, so the body must be
// safe to run twice at once (per-system work re-checks its conditions under a
// row lock). Expiry compares the clocks of the processes, which must agree to
// well within `lease_ttl`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "storage/store.h"

namespace puddle {

struct PeriodicLoopOptions {
  std::string name;  // the lease's name and the loop's name in logs
  std::chrono::milliseconds interval{5000};
  // Store holding the lease; null when this process is the only one.
  Store* lease_store = nullptr;
  std::string holder;  // this process's id in the lease
  std::chrono::milliseconds lease_ttl{30000};
};

class PeriodicLoop {
 public:
  // Starts the thread; the first run begins at once.
  PeriodicLoop(PeriodicLoopOptions options, std::function<void()> body);
  ~PeriodicLoop();
  PeriodicLoop(const PeriodicLoop&) = delete;
  PeriodicLoop& operator=(const PeriodicLoop&) = delete;

  // Waits for a run under way to end, stops the thread and releases the lease.
  void Stop();

 private:
  void Loop();
  // Takes or renews the lease; returns whether this process may run now.
  bool HoldLease();
  void ReleaseLease();

  const PeriodicLoopOptions options_;
  const std::function<void()> body_;
  // Used by the loop thread only, and by Stop after joining it.
  bool holding_ = false;
  bool lease_logged_ = false;  // whether the first lease outcome was logged
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace puddle
