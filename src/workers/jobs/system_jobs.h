// SystemJobs: the job handlers that carry out system operations on a provider.
//
// Every handler is idempotent: it re-reads the system, skips what is already
// done (a provider state means the machine exists), and stops without acting
// when a later request moved the system off its path (kSuperseded). Each step
// a user would care about becomes an event. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "services/systems/system_service.h"
#include "storage/store.h"
#include "workers/job_runner.h"

namespace puddle {

struct SystemJobsOptions {
  std::string installation_id;
  std::chrono::milliseconds health_poll_interval{500};
  // Set during shutdown: waits end with a transient error so the job is requeued.
  const std::atomic<bool>* stopping = nullptr;
};

class SystemJobs {
 public:
  SystemJobs(Store& store, const ProviderMap& providers, SystemService& systems,
             SystemJobsOptions options);

  void RegisterWith(JobRunner& runner);

  Result<JobOutcome> Create(const Job& job);
  Result<JobOutcome> Start(const Job& job);
  Result<JobOutcome> Stop(const Job& job);
  Result<JobOutcome> Reboot(const Job& job);
  Result<JobOutcome> RestartProduct(const Job& job);
  Result<JobOutcome> Delete(const Job& job);

  // Marks the system failed with `error` in an event (the job failed for good).
  void OnFailure(const Job& job, const Error& error);

 private:
  struct Context;

  Result<Context> Load(const Job& job);
  // Applies `change` when the system's status is in `expected`; returns false
  // (superseded) otherwise. Adds `message` as an event.
  Result<bool> Transition(const Job& job, std::initializer_list<SystemStatus> expected,
                          const std::function<void(Tx&, System&)>& change,
                          const std::string& message);
  // Polls until the product passes its health check, the start timeout
  // passes, the process dies or the system leaves `status`.
  Result<bool> WaitUntilReady(const Job& job, Context& context, SystemStatus status);
  Result<JobOutcome> Launch(const Job& job, SystemStatus launching);
  // Restarts a running machine (reboot, restart-product) from status `from`
  // and waits until its product is ready again.
  Result<JobOutcome> Relaunch(const Job& job, SystemStatus from, const std::string& error_context,
                              const std::string& message);

  Store& store_;
  const ProviderMap& providers_;
  SystemService& systems_;
  SystemJobsOptions options_;
};

}  // namespace puddle
