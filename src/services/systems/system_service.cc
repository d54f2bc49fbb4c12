#include "services/systems/system_service.h"

#include <regex>

#include "common/crypto.h"
#include "common/ids.h"
#include "common/log.h"
#include "config/system_origins.h"
#include "services/costs/quota.h"
#include "services/systems/lifecycle.h"

namespace puddle {

std::string JobKindFor(OperationAction action) {
  return "system." + std::string(OperationActionName(action));
}

SystemService::SystemService(Store& store, Dispatcher& dispatcher, const ProviderMap& providers,
                             const Config& config, std::string token_secret)
    : store_(store),
      dispatcher_(dispatcher),
      providers_(providers),
      config_(config),
      token_secret_(std::move(token_secret)) {}

namespace {

tl::unexpected<Error> Invalid(const std::string& field, const std::string& message) {
  return MakeError(ErrorCode::kValidationFailed, message, field);
}

Status ValidateName(const std::string& name, const std::string& pattern) {
  if (name.empty() || name.size() > 63) {
    return Invalid("name", "name must be 1 to 63 characters long");
  }
  std::regex regex(pattern);
  if (!std::regex_match(name, regex)) {
    return Invalid("name", "name \"" + name +
                               "\" is invalid: use lowercase letters, digits and hyphens, not "
                               "ending with a hyphen");
  }
  return Ok();
}

Status ValidateIdleTimeout(const Config& config, int64_t minutes) {
  std::string allowed;
  for (const auto& option : config.idle_timeout_options) {
    if (option.minutes == minutes) return Ok();
    allowed += (allowed.empty() ? "" : ", ") + std::to_string(option.minutes);
  }
  return Invalid("idleTimeoutMinutes", "idleTimeoutMinutes must be one of: " + allowed);
}

Requester RequesterFor(const Actor& actor, const System& system) {
  return actor.user_id == system.owner_id ? Requester::kOwner : Requester::kAdmin;
}

}  // namespace

Result<SystemView> SystemService::Create(const Actor& actor, const CreateSystemRequest& request) {
  PUDDLE_RETURN_IF_ERROR(ValidateName(request.name, config_.vm_name_regexp));
  int64_t idle_minutes = request.idle_timeout_minutes.value_or(
      config_.idle_timeout_options.empty() ? -1 : config_.idle_timeout_options.front().minutes);
  PUDDLE_RETURN_IF_ERROR(ValidateIdleTimeout(config_, idle_minutes));

  std::string job_id;
  auto created = store_.WriteValue<SystemView>([&](Tx& tx) -> Result<SystemView> {
    // The catalog: an enabled version with a ready image of an enabled provider.
    PUDDLE_ASSIGN_OR_RETURN(auto product, tx.GetProduct(request.product));
    if (!product) return Invalid("product", "product \"" + request.product + "\" does not exist");
    const ProductVersion* version = nullptr;
    for (const auto& candidate : product->versions) {
      if (candidate.version == request.version) version = &candidate;
    }
    if (version == nullptr || !version->enabled) {
      return Invalid("version", "version \"" + request.version + "\" of " + request.product +
                                    " does not exist or is disabled");
    }
    PUDDLE_ASSIGN_OR_RETURN(auto images, tx.ListImagesOf(request.product, request.version));
    const Image* image = nullptr;
    for (const auto& candidate : images) {
      if (candidate.status == "ready" && providers_.count(candidate.provider)) image = &candidate;
    }
    if (image == nullptr) {
      return Invalid("version", "version \"" + request.version + "\" of " + request.product +
                                    " has no ready image on an enabled provider");
    }
    PUDDLE_ASSIGN_OR_RETURN(auto type, tx.GetSystemType(request.system_type));
    if (!type || !type->enabled) {
      return Invalid("systemType",
                     "system type \"" + request.system_type + "\" does not exist or is disabled");
    }
    Provider* provider = providers_.at(image->provider);
    PUDDLE_RETURN_IF_ERROR(provider->CheckSystemType(*type));
    // Locks the owner's row, so the owner's concurrent creates and starts
    // see each other's systems.
    PUDDLE_RETURN_IF_ERROR(
        CheckLaunchAllowed(tx, actor.user_id, LaunchKind::kCreate, config_.currency));

    System system;
    system.id = NewId(12);
    system.name = request.name;
    system.owner_id = actor.user_id;
    system.owner_username = actor.username;
    system.product = request.product;
    system.version = request.version;
    system.system_type = type->id;
    system.image_id = image->id;
    system.status = SystemStatus::kQueued;
    system.price_per_hour = type->price_per_hour;
    system.idle_timeout_minutes = idle_minutes;
    system.provider = image->provider;
    system.sealed_token = SealSecret(token_secret_, RandomToken(24));
    system.created_at = tx.Now();
    system.updated_at = system.created_at;
    PUDDLE_RETURN_IF_ERROR(tx.InsertSystem(system));

    PUDDLE_RETURN_IF_ERROR(Enqueue(tx, system, OperationAction::kCreate, OperationReason::kUser,
                                   actor.user_id, "Queued by " + actor.username, job_id));
    return View(tx, actor, system);
  });
  if (!created) return created;

  dispatcher_.Publish(job_id);
  log::Info("system created", {{"system_id", created->system.id}, {"user", actor.username}});
  return created;
}

Result<SystemView> SystemService::Get(const Actor& actor, const std::string& id) {
  return store_.ReadValue<SystemView>([&](Tx& tx) -> Result<SystemView> {
    PUDDLE_ASSIGN_OR_RETURN(auto system, LoadVisible(tx, actor, id));
    return View(tx, actor, std::move(system));
  });
}

Result<Page<SystemView>> SystemService::List(const Actor& actor, const SystemFilter& filter,
                                             const PageRequest& page) {
  SystemFilter scoped = filter;
  if (!actor.IsAdmin()) {
    if (scoped.owner_id && *scoped.owner_id != actor.user_id) {
      return MakeError(ErrorCode::kForbidden, "only admins may list other users' systems",
                       "query.owner");
    }
    scoped.owner_id = actor.user_id;
  }
  return store_.ReadValue<Page<SystemView>>([&](Tx& tx) -> Result<Page<SystemView>> {
    PUDDLE_ASSIGN_OR_RETURN(auto systems, tx.ListSystems(scoped, page));
    Page<SystemView> views;
    views.next_cursor = systems.next_cursor;
    for (auto& system : systems.items) {
      PUDDLE_ASSIGN_OR_RETURN(auto view, View(tx, actor, std::move(system)));
      views.items.push_back(std::move(view));
    }
    return views;
  });
}

Result<SystemView> SystemService::Request(const Actor& actor, const std::string& id,
                                          OperationAction action,
                                          std::optional<int64_t> keep_alive_minutes) {
  std::string job_id;
  auto requested = store_.WriteValue<SystemView>([&](Tx& tx) -> Result<SystemView> {
    PUDDLE_ASSIGN_OR_RETURN(auto system, LoadVisibleForUpdate(tx, actor, id));
    Requester requester = RequesterFor(actor, system);
    OperationReason reason =
        requester == Requester::kOwner ? OperationReason::kUser : OperationReason::kAdmin;

    // A repeated request for an action under way creates nothing new.
    PUDDLE_ASSIGN_OR_RETURN(auto active, tx.ListActiveJobs(system.id));
    for (const auto& job : active) {
      if (job.kind == JobKindFor(action) && IsOnPath(action, system.status)) {
        return View(tx, actor, std::move(system));
      }
    }
    // An admin acting on their own system may also make the admin-only requests.
    Status allowed = CheckTransition(action, system.status, requester);
    if (!allowed && allowed.error().code == ErrorCode::kForbidden && actor.IsAdmin()) {
      allowed = CheckTransition(action, system.status, Requester::kAdmin);
    }
    PUDDLE_RETURN_IF_ERROR(allowed);
    if (action == OperationAction::kStart) {
      PUDDLE_RETURN_IF_ERROR(
          CheckLaunchAllowed(tx, system.owner_id, LaunchKind::kStart, config_.currency));
    }

    if (action == OperationAction::kKeepAlive) {
      int64_t limit = config_.max_keep_alive_minutes;
      int64_t minutes = keep_alive_minutes.value_or(limit);
      if (minutes < 1 || minutes > limit) {
        return Invalid("minutes", "minutes must be between 1 and " + std::to_string(limit));
      }
      Operation operation;
      operation.id = NewId(20);
      operation.system_id = system.id;
      operation.action = action;
      operation.reason = reason;
      operation.requested_by = actor.user_id;
      operation.state = OperationState::kSucceeded;
      operation.created_at = operation.updated_at = tx.Now();
      PUDDLE_RETURN_IF_ERROR(tx.InsertOperation(operation));
      // A keep-alive is not activity: it holds off idle and max-uptime stops
      // until now + minutes and leaves the idle clock alone.
      TimePoint until = tx.Now() + std::chrono::minutes(minutes);
      PUDDLE_RETURN_IF_ERROR(tx.SetKeepAlive(system.id, tx.Now(), until));
      PUDDLE_RETURN_IF_ERROR(tx.InsertEvent(
          system.id, operation.id, EventLevel::kInfo,
          "Kept alive for " + std::to_string(minutes) + " minutes by " + actor.username +
              ": no idle or max-uptime stop before " + FormatTime(until)));
      return View(tx, actor, std::move(system));
    }

    std::string message = std::string(OperationActionName(action)) + " requested by " +
                          actor.username;
    message[0] = static_cast<char>(std::toupper(message[0]));
    PUDDLE_RETURN_IF_ERROR(
        Enqueue(tx, system, action, reason, actor.user_id, message, job_id));
    return View(tx, actor, std::move(system));
  });
  if (!requested) return requested;

  if (!job_id.empty()) dispatcher_.Publish(job_id);
  log::Info("system request accepted",
            {{"system_id", id},
             {"user", actor.username},
             {"transition", std::string(OperationActionName(action))}});
  return requested;
}

Status SystemService::RequestAutomatic(const std::string& id, OperationAction action,
                                       OperationReason reason, const std::string& message) {
  std::string job_id;
  auto requested = store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto found, tx.GetSystemForUpdate(id));
    if (!found) return MakeError(ErrorCode::kNotFound, "system " + id + " not found");
    System system = std::move(*found);
    PUDDLE_RETURN_IF_ERROR(CheckTransition(action, system.status, Requester::kAutomatic));
    return Enqueue(tx, system, action, reason, std::nullopt, message, job_id);
  });
  if (requested && !job_id.empty()) dispatcher_.Publish(job_id);
  return requested;
}

Result<bool> SystemService::RequestAutomaticIf(const std::string& id, OperationAction action,
                                               const AutomaticRecheck& recheck) {
  std::string job_id;
  auto requested = store_.WriteValue<bool>([&](Tx& tx) -> Result<bool> {
    PUDDLE_ASSIGN_OR_RETURN(auto found, tx.GetSystemForUpdate(id));
    if (!found) return MakeError(ErrorCode::kNotFound, "system " + id + " not found");
    System system = std::move(*found);
    PUDDLE_ASSIGN_OR_RETURN(auto request, recheck(tx, system));
    if (!request) return false;
    PUDDLE_RETURN_IF_ERROR(CheckTransition(action, system.status, Requester::kAutomatic));
    PUDDLE_RETURN_IF_ERROR(
        Enqueue(tx, system, action, request->reason, std::nullopt, request->message, job_id));
    return true;
  });
  if (requested && !job_id.empty()) dispatcher_.Publish(job_id);
  return requested;
}

Status SystemService::RecordMachineGone(const std::string& id, const Observation& observed) {
  return store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto found, tx.GetSystemForUpdate(id));
    if (!found || found->status != SystemStatus::kRunning) return Ok();
    PUDDLE_ASSIGN_OR_RETURN(auto active, tx.ListActiveJobs(id));
    if (!active.empty()) return Ok();
    System system = std::move(*found);

    bool host_restarted = observed.gone == GoneReason::kHostRestarted;
    Operation operation;
    operation.id = NewId(20);
    operation.system_id = id;
    operation.action = host_restarted ? OperationAction::kStop : OperationAction::kFail;
    operation.reason = host_restarted ? OperationReason::kHostRestart : OperationReason::kProcessExit;
    operation.state = OperationState::kSucceeded;
    operation.created_at = operation.updated_at = tx.Now();
    PUDDLE_RETURN_IF_ERROR(tx.InsertOperation(operation));

    // After a host restart the session ends when the provider last knew the
    // machine running (the local provider: the new boot's time). Without that,
    // the row's last change is used, which undercounts the session.
    TimePoint end = tx.Now();
    if (host_restarted) end = std::min(observed.gone_at.value_or(system.updated_at), tx.Now());
    PUDDLE_RETURN_IF_ERROR(tx.CloseCostSession(id, end));
    system.status = host_restarted ? SystemStatus::kStopped : SystemStatus::kFailed;
    system.vm_status = VmStatus::kStopped;
    system.product_status = ProductStatus::kStopped;
    system.address.clear();
    PUDDLE_RETURN_IF_ERROR(tx.UpdateSystem(system));

    std::string message;
    if (host_restarted) {
      message = "The host restarted, which stopped the system; start it again to continue";
    } else {
      message = "The product " +
                (observed.exit_description.empty() ? std::string("stopped unexpectedly")
                                                   : observed.exit_description);
      if (!observed.last_log_lines.empty()) message += "; last output:\n" + observed.last_log_lines;
    }
    PUDDLE_RETURN_IF_ERROR(tx.InsertEvent(id, operation.id,
                                          host_restarted ? EventLevel::kWarning : EventLevel::kError,
                                          message));
    log::Warning("system machine gone", {{"system_id", id},
                                         {"reason", std::string(OperationReasonName(operation.reason))}});
    return Ok();
  });
}

Status SystemService::RecordProductHealth(const std::string& id, ProductStatus health) {
  return store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystemForUpdate(id));
    if (!system || system->status != SystemStatus::kRunning || system->product_status == health) {
      return Ok();
    }
    system->product_status = health;
    PUDDLE_RETURN_IF_ERROR(tx.UpdateSystem(*system));
    std::string message = health == ProductStatus::kReady
                              ? "The product answers its health check again"
                              : "The product stopped answering its health check";
    return tx.InsertEvent(id, std::nullopt,
                          health == ProductStatus::kReady ? EventLevel::kInfo : EventLevel::kWarning,
                          message)
        .map([](const Event&) {});
  });
}

// `system` was loaded with GetSystemForUpdate (or inserted) in `tx`, so no
// other transaction changes it between the caller's checks and this write.
Status SystemService::Enqueue(Tx& tx, System& system, OperationAction action,
                              OperationReason reason,
                              const std::optional<std::string>& requested_by,
                              const std::string& message, std::string& job_id) {
  TimePoint now = tx.Now();

  // Queued jobs for this system are superseded; a running one notices the
  // new status at its next step and stops there.
  PUDDLE_ASSIGN_OR_RETURN(auto active, tx.ListActiveJobs(system.id));
  for (auto job : active) {
    if (job.state != JobState::kQueued) continue;
    job.state = JobState::kCancelled;
    job.last_error = "superseded by " + std::string(OperationActionName(action));
    PUDDLE_RETURN_IF_ERROR(tx.UpdateJob(job));
    PUDDLE_RETURN_IF_ERROR(
        tx.UpdateOperation(job.operation_id, OperationState::kFailed, job.last_error));
  }

  Operation operation;
  operation.id = NewId(20);
  operation.system_id = system.id;
  operation.action = action;
  operation.reason = reason;
  operation.requested_by = requested_by;
  operation.state = action == OperationAction::kFail ? OperationState::kSucceeded
                                                     : OperationState::kQueued;
  operation.created_at = operation.updated_at = now;
  PUDDLE_RETURN_IF_ERROR(tx.InsertOperation(operation));

  SystemStatus first = FirstStatus(action, system.status, !system.provider_state.empty());
  if (action == OperationAction::kCreate) first = SystemStatus::kQueued;
  system.status = first;
  if (ClosesCostSession(first)) PUDDLE_RETURN_IF_ERROR(tx.CloseCostSession(system.id, now));
  if (action == OperationAction::kDelete) system.address.clear();
  PUDDLE_RETURN_IF_ERROR(tx.UpdateSystem(system));
  PUDDLE_RETURN_IF_ERROR(tx.InsertEvent(system.id, operation.id,
                                        action == OperationAction::kFail ? EventLevel::kError
                                                                         : EventLevel::kInfo,
                                        message));

  // fail makes no provider call: it only records the status.
  if (action == OperationAction::kFail) return Ok();

  Job job;
  job.id = NewId(20);
  job.kind = JobKindFor(action);
  job.system_id = system.id;
  job.operation_id = operation.id;
  job.state = JobState::kQueued;
  job.run_after = now;
  job.created_at = job.updated_at = now;
  PUDDLE_RETURN_IF_ERROR(tx.InsertJob(job));
  job_id = job.id;
  return Ok();
}

Result<std::vector<Event>> SystemService::Events(const Actor& actor, const std::string& id,
                                                 int64_t after_sequence, int limit) {
  return store_.ReadValue<std::vector<Event>>([&](Tx& tx) -> Result<std::vector<Event>> {
    PUDDLE_RETURN_IF_ERROR(LoadVisible(tx, actor, id));
    return tx.ListEvents(id, after_sequence, limit);
  });
}

Result<Page<Operation>> SystemService::Operations(const Actor& actor, const std::string& id,
                                                  const PageRequest& page) {
  return store_.ReadValue<Page<Operation>>([&](Tx& tx) -> Result<Page<Operation>> {
    PUDDLE_RETURN_IF_ERROR(LoadVisible(tx, actor, id));
    return tx.ListOperations(id, page);
  });
}

Result<std::vector<CostSession>> SystemService::Sessions(const Actor& actor,
                                                         const std::string& id) {
  return store_.ReadValue<std::vector<CostSession>>(
      [&](Tx& tx) -> Result<std::vector<CostSession>> {
        PUDDLE_RETURN_IF_ERROR(LoadVisible(tx, actor, id));
        return tx.ListCostSessions(id);
      });
}

Result<std::string> SystemService::Logs(const Actor& actor, const std::string& id, int lines) {
  PUDDLE_ASSIGN_OR_RETURN(auto system,
                          store_.ReadValue<System>([&](Tx& tx) { return LoadVisible(tx, actor, id); }));
  auto provider = providers_.find(system.provider);
  if (provider == providers_.end() || system.provider_state.empty()) return std::string();
  return provider->second->ReadLogs(system.id, system.provider_state, lines);
}

Result<std::string> SystemService::ProductToken(const System& system) const {
  auto token = OpenSecret(token_secret_, system.sealed_token);
  if (!token) {
    return InternalError("system " + system.id +
                         ": product token cannot be unsealed; was auth.token.secret changed?");
  }
  return *token;
}

namespace {

Result<System> VisibleOrNotFound(std::optional<System> system, const Actor& actor,
                                 const std::string& id) {
  if (!system || (!actor.IsAdmin() && system->owner_id != actor.user_id)) {
    return MakeError(ErrorCode::kNotFound, "system \"" + id + "\" not found");
  }
  return std::move(*system);
}

}  // namespace

Result<System> SystemService::LoadVisible(Tx& tx, const Actor& actor, const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystem(id));
  return VisibleOrNotFound(std::move(system), actor, id);
}

Result<System> SystemService::LoadVisibleForUpdate(Tx& tx, const Actor& actor,
                                                   const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystemForUpdate(id));
  return VisibleOrNotFound(std::move(system), actor, id);
}

Result<SystemView> SystemService::View(Tx& tx, const Actor& actor, System system) {
  SystemView view;
  PUDDLE_ASSIGN_OR_RETURN(auto sessions, tx.ListCostSessions(system.id));
  for (const auto& session : sessions) view.cost += SessionCost(session, tx.Now());

  // Browsers reach a ready product through the access proxy, on the system's own origin.
  bool ready = system.status == SystemStatus::kRunning &&
               system.product_status == ProductStatus::kReady && !system.address.empty();
  SystemOrigins origins(config_);
  if (ready && origins.Work()) {
    PUDDLE_ASSIGN_OR_RETURN(auto image, tx.GetImage(system.image_id));
    view.url = origins.UrlOf(system.id, image ? image->launch.base_path_mode : "prefix");
  }
  if (activity_) {
    PUDDLE_ASSIGN_OR_RETURN(view.activity, activity_->Describe(tx, system));
  }
  view.system = std::move(system);
  return view;
}

}  // namespace puddle
