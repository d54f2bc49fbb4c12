// Runtime: what `puddle serve` and `puddle worker` share, opened in order:
// the data directory, the store, the installation's settings, the local
// provider with its firewall rules, the system service, the job runner and
// the periodic loops (reconcile, reaper, budget, idle, activity flush, and
// with Redis the queue sweeper).
//
// On the embedded SQLite store the data directory is locked, so a second
// process on it fails to start, and jobs that a previous process left running
// are requeued at start. On PostgreSQL, which several processes share, neither
// happens: jobs of a process that died are requeued by the reaper once their
// heartbeat is silent, and each periodic loop runs in the one process that
// holds its lease.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "app/data_dir.h"
#include "app/periodic_loop.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "providers/local/local_provider.h"
#include "queue/dispatcher.h"
#include "services/systems/system_service.h"
#include "storage/store.h"
#include "workers/job_runner.h"
#include "workers/jobs/system_jobs.h"
#include "workers/loops/budget_loop.h"
#include "workers/loops/idle_loop.h"
#include "workers/loops/reconcile_loop.h"

namespace puddle {

struct Installation {
  std::string id;
  std::string token_secret;
};

class Runtime {
 public:
  // Opens everything and starts nothing. The PostgreSQL pool gets one
  // connection per job worker plus `extra_connections` (API handler threads,
  // loops, heartbeats). Error messages name the step that failed.
  static Result<std::unique_ptr<Runtime>> Open(const Config& config, int extra_connections);
  // Calls Stop().
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Starts config.workers job workers (none for 0) and the periodic loops.
  void Start();
  // Stops the loops, releasing their leases, and the workers, returning their
  // jobs to the queue. Systems keep running.
  void Stop();

  const Config& config() const { return config_; }
  const DataDir& data_dir() const { return dir_; }
  const Installation& installation() const { return installation_; }
  Store& store() { return *store_; }
  Dispatcher& dispatcher() { return *dispatcher_; }
  Metrics& metrics() { return metrics_; }
  SystemService& systems() { return *systems_; }
  // The access proxy's ActivitySink in this process.
  ActivityTracker& activity() { return *activity_; }
  // Names this process in job claims and loop leases.
  const std::string& process_id() const { return process_id_; }

 private:
  explicit Runtime(const Config& config);

  Status OpenStoreAndInstallation(int pool_size);
  Status OpenProviders();
  // Redis when redis.connections.address is set, else the in-process queue.
  Status OpenDispatcher();
  void CreateWorkers();
  void RequeueJobsOfPreviousRun();
  PeriodicLoopOptions LoopOptions(const std::string& name, std::chrono::milliseconds interval,
                                  std::chrono::milliseconds lease_ttl);

  const Config& config_;
  const std::string process_id_;
  DataDir dir_;
  int lock_fd_ = -1;  // holds the SQLite data-directory lock; -1 on PostgreSQL
  SystemClock clock_;
  std::unique_ptr<Store> store_;
  Installation installation_;
  std::unique_ptr<LocalProvider> local_;
  ProviderMap providers_;
  std::unique_ptr<Dispatcher> dispatcher_;
  Metrics metrics_;
  std::unique_ptr<SystemService> systems_;
  // Set during shutdown, so jobs waiting for a product end and are requeued.
  std::atomic<bool> stopping_{false};
  std::unique_ptr<JobRunner> runner_;
  std::unique_ptr<SystemJobs> jobs_;
  std::unique_ptr<ReconcileLoop> reconcile_;
  std::unique_ptr<PeriodicLoop> reconciler_;
  std::unique_ptr<PeriodicLoop> reaper_;
  std::unique_ptr<PeriodicLoop> sweeper_;  // only with Redis
  std::unique_ptr<ActivityTracker> activity_;
  std::unique_ptr<IdleLoop> idle_;
  std::unique_ptr<PeriodicLoop> idle_checker_;
  std::unique_ptr<PeriodicLoop> activity_flusher_;  // every process, no lease
  std::unique_ptr<BudgetLoop> budget_;
  std::unique_ptr<PeriodicLoop> budget_checker_;
};

}  // namespace puddle
