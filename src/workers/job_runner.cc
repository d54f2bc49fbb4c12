#include "workers/job_runner.h"

#include <algorithm>

#include "common/log.h"

namespace puddle {

JobRunner::JobRunner(Store& store, Dispatcher& dispatcher, JobRunnerOptions options)
    : store_(store), dispatcher_(dispatcher), options_(std::move(options)) {}

JobRunner::~JobRunner() { Stop(); }

void JobRunner::Register(const std::string& kind, JobHandler handler,
                         JobFailureHandler on_failure) {
  handlers_[kind] = {std::move(handler), std::move(on_failure)};
}

void JobRunner::Start() {
  stopping_ = false;
  for (int i = 0; i < options_.workers; ++i) {
    std::string worker_id = options_.process_id + "/" + std::to_string(i);
    threads_.emplace_back([this, worker_id] { WorkerLoop(worker_id); });
  }
  threads_.emplace_back([this] { HeartbeatLoop(); });
  log::Info("workers started", {{"count", std::to_string(options_.workers)}});
}

void JobRunner::Stop() {
  if (threads_.empty()) return;
  stopping_ = true;
  dispatcher_.Close();
  heartbeat_wake_.notify_all();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  log::Info("workers stopped");
}

void JobRunner::WorkerLoop(std::string worker_id) {
  // While the store is unreachable (a database restart), claims back off
  // exponentially instead of retrying at the poll rate.
  int failures = 0;
  while (!stopping_) {
    Error error;
    ClaimResult result = ClaimAndRun(worker_id, error);
    if (result == ClaimResult::kStoreFailed) {
      ++failures;
      auto delay = std::max(options_.poll_interval, BackoffFor(failures));
      if (failures == 1 || failures % 10 == 0) {
        log::Warning("job claim failed; retrying with backoff",
                     {{"worker", worker_id},
                      {"attempt", std::to_string(failures)},
                      {"retry_in_ms", std::to_string(delay.count())},
                      {"error", error.message}});
      }
      dispatcher_.WaitForWork(delay);
      continue;
    }
    if (failures > 0) {
      log::Info("job claims work again",
                {{"worker", worker_id}, {"failed_attempts", std::to_string(failures)}});
      failures = 0;
    }
    if (result == ClaimResult::kIdle) dispatcher_.WaitForWork(options_.poll_interval);
  }
}

void JobRunner::HeartbeatLoop() {
  while (!stopping_) {
    std::vector<std::string> ids;
    std::map<std::string, std::vector<std::string>> by_worker;
    {
      std::unique_lock lock(mutex_);
      heartbeat_wake_.wait_for(lock, options_.heartbeat_interval, [this] { return stopping_.load(); });
      for (const auto& [job_id, worker_id] : running_) by_worker[worker_id].push_back(job_id);
    }
    for (const auto& [worker_id, job_ids] : by_worker) {
      auto beat = store_.Write([&](Tx& tx) { return tx.HeartbeatJobs(job_ids, worker_id); });
      if (!beat) log::Warning("job heartbeat failed", {{"error", beat.error().message}});
    }
  }
}

bool JobRunner::RunOne(const std::string& worker_id) {
  Error error;
  ClaimResult result = ClaimAndRun(worker_id, error);
  if (result == ClaimResult::kStoreFailed) {
    log::Warning("job claim failed", {{"worker", worker_id}, {"error", error.message}});
  }
  return result == ClaimResult::kRan;
}

JobRunner::ClaimResult JobRunner::ClaimAndRun(const std::string& worker_id, Error& error) {
  auto claimed = store_.WriteValue<std::optional<Job>>(
      [&](Tx& tx) { return tx.ClaimJob(worker_id); });
  if (!claimed) {
    error = claimed.error();
    return ClaimResult::kStoreFailed;
  }
  if (!*claimed) return ClaimResult::kIdle;
  Job job = std::move(**claimed);

  {
    std::lock_guard lock(mutex_);
    running_[job.id] = worker_id;
  }
  auto handler = handlers_.find(job.kind);
  Result<JobOutcome> outcome =
      handler == handlers_.end()
          ? Result<JobOutcome>(InternalError("no handler for job kind " + job.kind))
          : handler->second.first(job);
  {
    std::lock_guard lock(mutex_);
    running_.erase(job.id);
  }
  Finish(std::move(job), outcome);
  return ClaimResult::kRan;
}

std::chrono::milliseconds JobRunner::BackoffFor(int attempt) const {
  int shift = std::clamp(attempt - 1, 0, 20);
  auto delay = options_.backoff_base * (int64_t{1} << shift);
  return std::min<std::chrono::milliseconds>(delay, options_.backoff_cap);
}

void JobRunner::Finish(Job job, const Result<JobOutcome>& outcome) {
  if (outcome) {
    bool superseded = *outcome == JobOutcome::kSuperseded;
    job.state = superseded ? JobState::kCancelled : JobState::kSucceeded;
    auto saved = store_.Write([&](Tx& tx) -> Status {
      PUDDLE_RETURN_IF_ERROR(tx.UpdateJob(job));
      return tx.UpdateOperation(job.operation_id,
                                superseded ? OperationState::kFailed : OperationState::kSucceeded,
                                superseded ? "superseded by a later request" : "");
    });
    if (!saved) log::Error("job result not saved", {{"job_id", job.id}, {"error", saved.error().message}});
    Count(job, superseded ? "superseded" : "succeeded");
    log::Info(superseded ? "job superseded" : "job succeeded",
              {{"job_id", job.id}, {"system_id", job.system_id}, {"kind", job.kind}});
    return;
  }

  const Error& error = outcome.error();
  bool transient = error.code == ErrorCode::kUnavailable;
  if (transient && job.attempt < job.max_attempts) {
    auto delay = BackoffFor(job.attempt);
    job.state = JobState::kQueued;
    job.claimed_by.clear();
    job.last_error = error.message;
    job.run_after = store_.clock().Now() + delay;
    auto saved = store_.Write([&](Tx& tx) -> Status {
      PUDDLE_RETURN_IF_ERROR(tx.UpdateJob(job));
      return tx.InsertEvent(job.system_id, job.operation_id, EventLevel::kWarning,
                            "Attempt " + std::to_string(job.attempt) + " failed: " +
                                error.message + "; retrying in " +
                                std::to_string(delay.count() / 1000) + " s")
          .map([](const Event&) {});
    });
    if (!saved) log::Error("job retry not saved", {{"job_id", job.id}, {"error", saved.error().message}});
    Count(job, "retried");
    log::Warning("job failed, will retry", {{"job_id", job.id},
                                            {"system_id", job.system_id},
                                            {"attempt", std::to_string(job.attempt)},
                                            {"error", error.message}});
    return;
  }
  FailForGood(std::move(job), error);
}

void JobRunner::FailForGood(Job job, const Error& error) {
  job.state = JobState::kFailed;
  job.last_error = error.message;
  auto saved = store_.Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.UpdateJob(job));
    return tx.UpdateOperation(job.operation_id, OperationState::kFailed, error.message);
  });
  if (!saved) log::Error("job failure not saved", {{"job_id", job.id}, {"error", saved.error().message}});
  Count(job, "failed");
  log::Error("job failed", {{"job_id", job.id},
                            {"system_id", job.system_id},
                            {"kind", job.kind},
                            {"attempt", std::to_string(job.attempt)},
                            {"error", error.message}});
  auto handler = handlers_.find(job.kind);
  if (handler != handlers_.end() && handler->second.second) handler->second.second(job, error);
}

void JobRunner::Count(const Job& job, const char* outcome) {
  if (options_.metrics == nullptr) return;
  options_.metrics->Increment("puddle_jobs_total", {{"kind", job.kind}, {"outcome", outcome}});
}

Result<int> JobRunner::ReapSilentJobs() {
  TimePoint cutoff = store_.clock().Now() - options_.silent_limit;
  PUDDLE_ASSIGN_OR_RETURN(auto silent, store_.ReadValue<std::vector<Job>>(
                                           [&](Tx& tx) { return tx.ListSilentJobs(cutoff); }));
  int reaped = 0;
  for (auto& job : silent) {
    Error error;
    error.code = ErrorCode::kUnavailable;
    error.message = "worker " + job.claimed_by + " stopped sending heartbeats";
    log::Warning("reaping silent job", {{"job_id", job.id}, {"system_id", job.system_id}});
    Finish(job, tl::unexpected(error));
    ++reaped;
  }
  return reaped;
}

}  // namespace puddle
