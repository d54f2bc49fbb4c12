// JobRunner: in-process workers that claim job rows and run their handlers.
//
// Workers claim jobs atomically from the store, a background thread keeps
// their heartbeats fresh, and failures retry with capped exponential backoff
// when the error is transient (kUnavailable). The reaper returns jobs whose
// heartbeat went silent (their worker died) to the queue, or fails them once
// their attempts are spent. Thread-safe; Start/Stop from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/result.h"
#include "queue/dispatcher.h"
#include "storage/store.h"

namespace puddle {

enum class JobOutcome {
  kSucceeded,
  // A later request changed the system; the job stopped without acting.
  kSuperseded,
};

using JobHandler = std::function<Result<JobOutcome>(const Job& job)>;
// Called once a job has failed for good, with the error that ended it.
using JobFailureHandler = std::function<void(const Job& job, const Error& error)>;

struct JobRunnerOptions {
  int workers = 4;
  std::string process_id;  // names this process's workers in claimed_by
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds heartbeat_interval{5000};
  // A running job whose heartbeat is older than this is reaped.
  std::chrono::milliseconds silent_limit{60000};
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_cap{60000};
  // Counts finished jobs by kind and outcome when set.
  Metrics* metrics = nullptr;
};

class JobRunner {
 public:
  JobRunner(Store& store, Dispatcher& dispatcher, JobRunnerOptions options);
  ~JobRunner();

  void Register(const std::string& kind, JobHandler handler, JobFailureHandler on_failure);

  void Start();
  // Stops claiming, waits for running handlers to return, and leaves nothing claimed.
  void Stop();

  // Claims and runs one job on the calling thread. Returns false when none was
  // runnable or the store could not be reached.
  bool RunOne(const std::string& worker_id);

  // Requeues or fails jobs whose heartbeat is older than the silent limit.
  // Returns how many were reaped.
  Result<int> ReapSilentJobs();

  // Delay before attempt `attempt` + 1: base * 2^(attempt-1), at most cap.
  std::chrono::milliseconds BackoffFor(int attempt) const;

 private:
  enum class ClaimResult { kRan, kIdle, kStoreFailed };

  void WorkerLoop(std::string worker_id);
  // Claims and runs one job; `error` receives the store's error for kStoreFailed.
  ClaimResult ClaimAndRun(const std::string& worker_id, Error& error);
  void HeartbeatLoop();
  void Finish(Job job, const Result<JobOutcome>& outcome);
  void FailForGood(Job job, const Error& error);
  void Count(const Job& job, const char* outcome);

  Store& store_;
  Dispatcher& dispatcher_;
  JobRunnerOptions options_;
  std::map<std::string, std::pair<JobHandler, JobFailureHandler>> handlers_;

  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable heartbeat_wake_;
  std::map<std::string, std::string> running_;  // job id -> worker id, GUARDED_BY(mutex_)
};

}  // namespace puddle
