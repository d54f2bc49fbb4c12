#include "workers/jobs/system_jobs.h"

#include <thread>

#include "common/log.h"
#include "services/systems/lifecycle.h"

namespace puddle {

struct SystemJobs::Context {
  System system;
  Provider* provider = nullptr;
  LaunchRequest launch;
};

SystemJobs::SystemJobs(Store& store, const ProviderMap& providers, SystemService& systems,
                       SystemJobsOptions options)
    : store_(store), providers_(providers), systems_(systems), options_(std::move(options)) {}

void SystemJobs::RegisterWith(JobRunner& runner) {
  auto on_failure = [this](const Job& job, const Error& error) { OnFailure(job, error); };
  auto add = [&](OperationAction action, Result<JobOutcome> (SystemJobs::*handler)(const Job&)) {
    runner.Register(JobKindFor(action), [this, handler](const Job& job) { return (this->*handler)(job); },
                    on_failure);
  };
  add(OperationAction::kCreate, &SystemJobs::Create);
  add(OperationAction::kStart, &SystemJobs::Start);
  add(OperationAction::kStop, &SystemJobs::Stop);
  add(OperationAction::kReboot, &SystemJobs::Reboot);
  add(OperationAction::kRestartProduct, &SystemJobs::RestartProduct);
  add(OperationAction::kDelete, &SystemJobs::Delete);
}

Result<SystemJobs::Context> SystemJobs::Load(const Job& job) {
  Context context;
  auto loaded = store_.Read([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystem(job.system_id));
    if (!system) return InternalError("system " + job.system_id + " vanished from the store");
    context.system = std::move(*system);
    PUDDLE_ASSIGN_OR_RETURN(auto type, tx.GetSystemType(context.system.system_type));
    PUDDLE_ASSIGN_OR_RETURN(auto image, tx.GetImage(context.system.image_id));
    if (!type || !image) {
      return InternalError("system " + job.system_id + ": its system type or image was removed");
    }
    PUDDLE_ASSIGN_OR_RETURN(int64_t number, tx.UserNumber(context.system.owner_id));
    context.launch.system_type = std::move(*type);
    context.launch.image = std::move(*image);
    context.launch.owner_number = number;
    return Ok();
  });
  if (!loaded) return tl::unexpected(loaded.error());

  auto provider = providers_.find(context.system.provider);
  if (provider == providers_.end()) {
    return InternalError("provider \"" + context.system.provider + "\" is not enabled");
  }
  context.provider = provider->second;
  context.launch.installation_id = options_.installation_id;
  context.launch.system_id = context.system.id;
  context.launch.owner_id = context.system.owner_id;
  context.launch.owner_username = context.system.owner_username;
  PUDDLE_ASSIGN_OR_RETURN(context.launch.product_token, systems_.ProductToken(context.system));
  return context;
}

Result<bool> SystemJobs::Transition(const Job& job, std::initializer_list<SystemStatus> expected,
                                    const std::function<void(Tx&, System&)>& change,
                                    const std::string& message) {
  return store_.WriteValue<bool>([&](Tx& tx) -> Result<bool> {
    PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystemForUpdate(job.system_id));
    if (!system) return false;
    bool on_path = false;
    for (SystemStatus status : expected) on_path = on_path || system->status == status;
    if (!on_path) return false;

    SystemStatus before = system->status;
    change(tx, *system);
    PUDDLE_RETURN_IF_ERROR(tx.UpdateSystem(*system));
    if (!message.empty()) {
      PUDDLE_RETURN_IF_ERROR(
          tx.InsertEvent(system->id, job.operation_id, EventLevel::kInfo, message));
    }
    if (before != system->status) {
      log::Info("system status changed",
                {{"system_id", system->id},
                 {"job_id", job.id},
                 {"transition", std::string(SystemStatusName(before)) + "->" +
                                    std::string(SystemStatusName(system->status))}});
    }
    return true;
  });
}

Result<bool> SystemJobs::WaitUntilReady(const Job& job, Context& context, SystemStatus status) {
  auto timeout = std::chrono::seconds(context.launch.image.launch.start_timeout_seconds);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int failed_polls = 0;  // consecutive, and only the first is logged
  while (true) {
    PUDDLE_ASSIGN_OR_RETURN(auto current, store_.ReadValue<std::optional<System>>(
                                              [&](Tx& tx) { return tx.GetSystem(job.system_id); }));
    if (!current || current->status != status) return false;

    // A transient poll error is retried at the next poll, until the start timeout.
    auto observed = context.provider->Poll(context.system.id, context.system.provider_state);
    if (!observed && observed.error().code != ErrorCode::kUnavailable) {
      return tl::unexpected(observed.error());
    }
    if (!observed) {
      if (++failed_polls == 1) {
        log::Warning("poll failed while waiting for the product",
                     {{"system_id", job.system_id}, {"job_id", job.id},
                      {"error", observed.error().message}});
      }
    } else if (observed->gone != GoneReason::kNone) {
      std::string what = observed->exit_description.empty()
                             ? "the product stopped"
                             : "the product " + observed->exit_description;
      std::string message = what + " before it passed its health check";
      if (!observed->last_log_lines.empty()) message += "; last output:\n" + observed->last_log_lines;
      return InternalError(message);
    } else {
      failed_polls = 0;
      ProductStatus health =
          context.provider->CheckProduct(context.launch, context.system.provider_state);
      if (health == ProductStatus::kReady) return true;
    }

    if (options_.stopping != nullptr && options_.stopping->load()) {
      return MakeError(ErrorCode::kUnavailable, "Puddle is shutting down");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return InternalError("the product health check timed out after " +
                           std::to_string(timeout.count()) + " s");
    }
    std::this_thread::sleep_for(options_.health_poll_interval);
  }
}

Result<JobOutcome> SystemJobs::Launch(const Job& job, SystemStatus launching) {
  PUDDLE_ASSIGN_OR_RETURN(auto context, Load(job));
  if (context.system.status != launching) return JobOutcome::kSuperseded;

  // A machine that already exists (a retried job) is started or adopted, never made twice.
  std::string state = context.system.provider_state;
  if (state.empty()) {
    auto created = context.provider->Create(context.launch);
    if (!created) return tl::unexpected(created.error().WithContext("create machine"));
    state = *created;
  } else {
    auto observed = context.provider->Poll(context.system.id, state);
    if (!observed || observed->vm_status != VmStatus::kRunning) {
      auto started = context.provider->Start(context.launch, state);
      if (!started) return tl::unexpected(started.error().WithContext("start machine"));
      state = *started;
    }
  }
  PUDDLE_ASSIGN_OR_RETURN(auto observed, context.provider->Poll(context.system.id, state));

  PUDDLE_ASSIGN_OR_RETURN(
      bool saved,
      Transition(job, {SystemStatus::kProvisioning, SystemStatus::kStarting},
                 [&](Tx&, System& system) {
                   system.status = SystemStatus::kStarting;
                   system.provider_state = state;
                   system.vm_status = observed.vm_status;
                   system.product_status = ProductStatus::kStarting;
                   system.address = observed.address;
                 },
                 "Machine started; waiting for the product to answer"));
  if (!saved) return JobOutcome::kSuperseded;
  context.system.provider_state = state;

  PUDDLE_ASSIGN_OR_RETURN(bool ready, WaitUntilReady(job, context, SystemStatus::kStarting));
  if (!ready) return JobOutcome::kSuperseded;

  PUDDLE_ASSIGN_OR_RETURN(bool running, Transition(job, {SystemStatus::kStarting},
                                                   [&](Tx& tx, System& system) {
                                                     system.status = SystemStatus::kRunning;
                                                     system.product_status = ProductStatus::kReady;
                                                     system.last_activity_at = tx.Now();
                                                     auto opened = tx.OpenCostSession(system);
                                                     (void)opened;
                                                   },
                                                   "System is running"));
  return running ? JobOutcome::kSucceeded : JobOutcome::kSuperseded;
}

Result<JobOutcome> SystemJobs::Create(const Job& job) {
  PUDDLE_ASSIGN_OR_RETURN(bool provisioning,
                          Transition(job, {SystemStatus::kQueued},
                                     [](Tx&, System& system) {
                                       system.status = SystemStatus::kProvisioning;
                                       system.vm_status = VmStatus::kPending;
                                     },
                                     "Provisioning the machine"));
  if (provisioning) return Launch(job, SystemStatus::kProvisioning);
  // A retried create finds the system already past queued.
  PUDDLE_ASSIGN_OR_RETURN(auto context, Load(job));
  if (context.system.status == SystemStatus::kProvisioning ||
      context.system.status == SystemStatus::kStarting) {
    return Launch(job, context.system.status);
  }
  return JobOutcome::kSuperseded;
}

Result<JobOutcome> SystemJobs::Start(const Job& job) {
  PUDDLE_ASSIGN_OR_RETURN(auto context, Load(job));
  if (context.system.status != SystemStatus::kProvisioning &&
      context.system.status != SystemStatus::kStarting) {
    return JobOutcome::kSuperseded;
  }
  return Launch(job, context.system.status);
}

Result<JobOutcome> SystemJobs::Stop(const Job& job) {
  PUDDLE_ASSIGN_OR_RETURN(auto context, Load(job));
  if (context.system.status != SystemStatus::kStopping) return JobOutcome::kSuperseded;

  std::string state = context.system.provider_state;
  if (!state.empty()) {
    auto stopped = context.provider->Stop(context.system.id, state);
    if (!stopped) return tl::unexpected(stopped.error().WithContext("stop machine"));
    state = *stopped;
  }
  PUDDLE_ASSIGN_OR_RETURN(bool saved, Transition(job, {SystemStatus::kStopping},
                                                 [&](Tx& tx, System& system) {
                                                   system.status = SystemStatus::kStopped;
                                                   system.vm_status = VmStatus::kStopped;
                                                   system.product_status = ProductStatus::kStopped;
                                                   system.provider_state = state;
                                                   system.address.clear();
                                                   auto closed = tx.CloseCostSession(system.id, tx.Now());
                                                   (void)closed;
                                                 },
                                                 "System stopped"));
  return saved ? JobOutcome::kSucceeded : JobOutcome::kSuperseded;
}

Result<JobOutcome> SystemJobs::Reboot(const Job& job) {
  return Relaunch(job, SystemStatus::kRebooting, "reboot machine",
                  "Machine restarted; waiting for the product");
}

Result<JobOutcome> SystemJobs::RestartProduct(const Job& job) {
  // For processes the product is the machine: restarting one restarts the other.
  return Relaunch(job, SystemStatus::kStarting, "restart product",
                  "Product restarted; waiting for it to answer");
}

Result<JobOutcome> SystemJobs::Relaunch(const Job& job, SystemStatus from,
                                        const std::string& error_context,
                                        const std::string& message) {
  PUDDLE_ASSIGN_OR_RETURN(auto context, Load(job));
  if (context.system.status != from) return JobOutcome::kSuperseded;
  auto relaunched = context.provider->Reboot(context.launch, context.system.provider_state);
  if (!relaunched) return tl::unexpected(relaunched.error().WithContext(error_context));
  std::string state = *relaunched;
  PUDDLE_ASSIGN_OR_RETURN(auto observed, context.provider->Poll(context.system.id, state));

  // The cost session stays open: the system never left running for good.
  PUDDLE_ASSIGN_OR_RETURN(bool saved, Transition(job, {from},
                                                 [&](Tx&, System& system) {
                                                   system.status = SystemStatus::kStarting;
                                                   system.provider_state = state;
                                                   system.vm_status = observed.vm_status;
                                                   system.product_status = ProductStatus::kStarting;
                                                   system.address = observed.address;
                                                 },
                                                 message));
  if (!saved) return JobOutcome::kSuperseded;
  context.system.provider_state = state;

  PUDDLE_ASSIGN_OR_RETURN(bool ready, WaitUntilReady(job, context, SystemStatus::kStarting));
  if (!ready) return JobOutcome::kSuperseded;
  PUDDLE_ASSIGN_OR_RETURN(bool running, Transition(job, {SystemStatus::kStarting},
                                                   [](Tx&, System& system) {
                                                     system.status = SystemStatus::kRunning;
                                                     system.product_status = ProductStatus::kReady;
                                                   },
                                                   "System is running"));
  return running ? JobOutcome::kSucceeded : JobOutcome::kSuperseded;
}

Result<JobOutcome> SystemJobs::Delete(const Job& job) {
  PUDDLE_ASSIGN_OR_RETURN(auto context, Load(job));
  if (context.system.status != SystemStatus::kDeleting) return JobOutcome::kSuperseded;
  auto deleted = context.provider->Delete(context.system.id, context.system.provider_state);
  if (!deleted) return tl::unexpected(deleted.error().WithContext("delete machine"));

  PUDDLE_ASSIGN_OR_RETURN(bool saved, Transition(job, {SystemStatus::kDeleting},
                                                 [](Tx& tx, System& system) {
                                                   system.status = SystemStatus::kDeleted;
                                                   system.vm_status = VmStatus::kTerminated;
                                                   system.product_status = ProductStatus::kNone;
                                                   system.provider_state.clear();
                                                   system.address.clear();
                                                   system.deleted_at = tx.Now();
                                                 },
                                                 "System deleted"));
  return saved ? JobOutcome::kSucceeded : JobOutcome::kSuperseded;
}

void SystemJobs::OnFailure(const Job& job, const Error& error) {
  auto saved = store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystemForUpdate(job.system_id));
    if (!system || system->status == SystemStatus::kDeleted) return Ok();
    // When a later request moved the system off this job's path, that
    // request's own job decides where the system ends.
    std::string_view kind = job.kind;
    auto action = ParseOperationAction(kind.substr(kind.find('.') + 1));
    if (action && !IsOnPath(*action, system->status)) return Ok();
    system->status = SystemStatus::kFailed;
    if (system->product_status != ProductStatus::kNone) {
      system->product_status = ProductStatus::kUnhealthy;
    }
    PUDDLE_RETURN_IF_ERROR(tx.CloseCostSession(system->id, tx.Now()));
    PUDDLE_RETURN_IF_ERROR(tx.UpdateSystem(*system));
    return tx.InsertEvent(system->id, job.operation_id, EventLevel::kError,
                          "Failed: " + error.message)
        .map([](const Event&) {});
  });
  if (!saved) {
    log::Error("system failure not saved",
               {{"system_id", job.system_id}, {"error", saved.error().message}});
  }
}

}  // namespace puddle
