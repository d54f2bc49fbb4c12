#include "workers/loops/idle_loop.h"

#include <algorithm>
#include <set>

#include "common/log.h"
#include "services/activity/jupyter_activity.h"

namespace puddle {
namespace {

using std::chrono::milliseconds;

// CPU use is judged only over at least this long (or the whole window when
// shorter), so one busy sample right after a start does not count.
constexpr std::chrono::minutes kMinCpuSpan{1};

bool HasKernelsApi(const System& system) { return system.product.rfind("jupyter", 0) == 0; }

std::optional<TimePoint> Later(std::optional<TimePoint> a, std::optional<TimePoint> b) {
  if (!a) return b;
  if (!b) return a;
  return std::max(*a, *b);
}

int64_t MinutesUntil(TimePoint now, TimePoint then) {
  auto remaining = std::chrono::duration_cast<milliseconds>(then - now).count();
  return std::max<int64_t>(0, (remaining + 59999) / 60000);
}

std::string WarningMessage(const SystemActivity& activity, TimePoint now) {
  std::string when = "at " + FormatTime(*activity.idle_stop_at) + " (in " +
                     std::to_string(MinutesUntil(now, *activity.idle_stop_at)) + " min)";
  if (activity.stop_reason == OperationReason::kMaxUptime) {
    return "The system stops " + when +
           " because it reaches its system type's max uptime. Keep it alive to postpone the stop.";
  }
  return "The system stops " + when + " because it has been " + activity.reason +
         ". Use it or keep it alive to postpone the stop.";
}

}  // namespace

std::string StopMessage(const SystemActivity& activity, const System& system,
                        std::optional<int64_t> max_uptime_minutes) {
  if (activity.stop_reason == OperationReason::kMaxUptime) {
    return "Stop requested: the system ran for its system type's max uptime of " +
           FormatDuration(std::chrono::minutes(max_uptime_minutes.value_or(0)));
  }
  return "Stop requested: the idle time-out of " +
         FormatDuration(std::chrono::minutes(system.idle_timeout_minutes)) +
         " passed. The system was " + activity.reason;
}

Result<int> IdleLoop::RunOnce() {
  PUDDLE_ASSIGN_OR_RETURN(auto running, store_.ReadValue<std::vector<System>>([](Tx& tx) {
    return tx.ListSystemsByStatus({SystemStatus::kRunning});
  }));

  std::set<std::string> running_ids;
  for (const auto& system : running) running_ids.insert(system.id);
  std::erase_if(cpu_samples_, [&](const auto& entry) { return !running_ids.contains(entry.first); });
  std::erase_if(product_silent_since_,
                [&](const auto& entry) { return !running_ids.contains(entry.first); });

  int stops = 0;
  for (const auto& system : running) {
    auto provider = providers_.find(system.provider);
    if (provider == providers_.end()) continue;

    auto inputs = store_.ReadValue<ActivityInputs>(
        [&](Tx& tx) { return LoadActivityInputs(tx, system); });
    if (!inputs) {
      log::Warning("reading a system's activity failed",
                   {{"system_id", system.id}, {"error", inputs.error().message}});
      continue;
    }
    TimePoint now = store_.clock().Now();
    if (MeasureProduct(system, *provider->second, now, inputs->record)) {
      product_silent_since_.erase(system.id);
    } else if (product_silent_since_.emplace(system.id, now).second) {
      log::Warning("reading the product's kernels failed; its idle stop waits for them",
                   {{"system_id", system.id},
                    {"max_wait_minutes", std::to_string(kProductSilenceGrace.count())}});
    }
    MeasureCpu(system, *provider->second, now, inputs->record);
    // Every reading sets its checked_at to now, so a system with no reading
    // this run needs no write.
    bool measured = inputs->record.product_checked_at == now || inputs->record.cpu_checked_at == now;
    if (measured) {
      auto stored = store_.Write([&](Tx& tx) { return tx.UpdateActivitySignals(inputs->record); });
      if (!stored) {
        log::Warning("storing a system's activity failed",
                     {{"system_id", system.id}, {"error", stored.error().message}});
      }
    }

    inputs->local_proxy_active_at = tracker_.LatestProxyActivity(system.id);
    SystemActivity activity = EvaluateActivity(*inputs, tracker_.policy(), now);
    if (!activity.idle_stop_at) continue;

    if (now >= *activity.warn_at && !activity.warned) {
      auto warned = Warn(system, activity, now);
      if (!warned) {
        log::Warning("writing a stop warning failed",
                     {{"system_id", system.id}, {"error", warned.error().message}});
      }
    } else if (now >= *activity.idle_stop_at && activity.warned) {
      auto silent = product_silent_since_.find(system.id);
      if (activity.stop_reason == OperationReason::kIdle && silent != product_silent_since_.end() &&
          now - silent->second < kProductSilenceGrace) {
        continue;  // Its kernels may be busy, so the next run checks again.
      }
      auto requested = RequestStop(system);
      if (!requested) {
        log::Error("requesting an automatic stop failed",
                   {{"system_id", system.id}, {"error", requested.error().message}});
      } else if (*requested) {
        ++stops;
      }
    }
  }
  return stops;
}

bool IdleLoop::MeasureProduct(const System& system, Provider& provider, TimePoint now,
                              ActivityRecord& record) {
  if (!HasKernelsApi(system) || system.product_status != ProductStatus::kReady) return true;
  auto token = systems_.ProductToken(system);
  if (!token) return true;
  auto image = store_.ReadValue<std::optional<Image>>(
      [&](Tx& tx) { return tx.GetImage(system.image_id); });
  if (!image || !*image) return true;

  LaunchRequest request;
  request.system_id = system.id;
  request.product_token = *token;
  request.image = std::move(**image);
  auto body = provider.GetFromProduct(request, system.provider_state, "api/kernels");
  if (!body) {
    log::Debug("reading the product's kernels failed",
               {{"system_id", system.id}, {"error", body.error().message}});
    return false;
  }
  auto report = jupyter::ParseKernels(*body);
  if (!report) {
    log::Warning("the product's kernels are unreadable",
                 {{"system_id", system.id}, {"error", report.error().message}});
    return false;
  }

  bool was_busy = record.product_busy.value_or(false) && record.product_busy_since;
  record.product_busy = report->busy;
  record.product_busy_since =
      report->busy ? (was_busy ? record.product_busy_since : std::optional<TimePoint>(now))
                   : std::nullopt;
  std::optional<TimePoint> active = record.product_active_at;
  if (report->busy) active = now;
  // Jupyter's clock may run ahead of ours; activity never lies in the future.
  if (report->last_activity) active = Later(active, std::min(*report->last_activity, now));
  record.product_active_at = active;
  record.product_checked_at = now;
  return true;
}

void IdleLoop::MeasureCpu(const System& system, Provider& provider, TimePoint now,
                          ActivityRecord& record) {
  auto seconds = provider.CpuSeconds(system.id, system.provider_state);
  if (!seconds) {
    log::Debug("reading a system's CPU time failed",
               {{"system_id", system.id}, {"error", seconds.error().message}});
    return;
  }
  if (!*seconds) return;

  auto& samples = cpu_samples_[system.id];
  // CPU time that went down belongs to new processes (a reboot): start over.
  if (!samples.empty() && **seconds < samples.back().seconds) samples.clear();
  samples.push_back({now, **seconds});
  const ActivityPolicy& policy = tracker_.policy();
  TimePoint window_start = now - policy.cpu_window;
  while (samples.size() >= 2 && samples[1].time <= window_start) samples.pop_front();
  if (samples.size() < 2) return;

  milliseconds span = std::chrono::duration_cast<milliseconds>(now - samples.front().time);
  milliseconds required = std::min<milliseconds>(policy.cpu_window, kMinCpuSpan);
  if (span < required || span.count() <= 0) return;

  double percent = (samples.back().seconds - samples.front().seconds) * 100.0 /
                   (static_cast<double>(span.count()) / 1000.0);
  bool busy = percent > policy.cpu_busy_percent;
  bool was_busy = record.cpu_busy.value_or(false) && record.cpu_busy_since;
  record.cpu_busy = busy;
  record.cpu_percent = percent;
  record.cpu_busy_since =
      busy ? (was_busy ? record.cpu_busy_since : std::optional<TimePoint>(now)) : std::nullopt;
  if (busy) record.cpu_active_at = now;
  record.cpu_checked_at = now;
}

Status IdleLoop::Warn(const System& system, const SystemActivity& activity, TimePoint now) {
  std::string message = WarningMessage(activity, now);
  std::string reason(OperationReasonName(*activity.stop_reason));
  PUDDLE_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto current, tx.GetSystemForUpdate(system.id));
    if (!current || current->status != SystemStatus::kRunning) return Ok();
    PUDDLE_RETURN_IF_ERROR(tx.InsertEvent(system.id, std::nullopt, EventLevel::kWarning, message));
    return tx.SetStopWarning(system.id, tx.Now(), *activity.idle_stop_at, reason);
  }));
  log::Info("warned of an automatic stop",
            {{"system_id", system.id}, {"reason", reason},
             {"stop_at", FormatTime(*activity.idle_stop_at)}});
  return Ok();
}

Result<bool> IdleLoop::RequestStop(const System& system) {
  using AutomaticRequest = SystemService::AutomaticRequest;
  auto recheck = [&](Tx& tx, const System& current) -> Result<std::optional<AutomaticRequest>> {
    if (current.status != SystemStatus::kRunning) return std::optional<AutomaticRequest>();
    PUDDLE_ASSIGN_OR_RETURN(auto inputs, LoadActivityInputs(tx, current));
    inputs.local_proxy_active_at = tracker_.LatestProxyActivity(current.id);
    SystemActivity activity = EvaluateActivity(inputs, tracker_.policy(), tx.Now());
    bool due = activity.idle_stop_at && tx.Now() >= *activity.idle_stop_at && activity.warned;
    if (!due) return std::optional<AutomaticRequest>();
    return std::optional<AutomaticRequest>(AutomaticRequest{
        *activity.stop_reason, StopMessage(activity, current, inputs.max_uptime_minutes)});
  };
  PUDDLE_ASSIGN_OR_RETURN(bool requested,
                          systems_.RequestAutomaticIf(system.id, OperationAction::kStop, recheck));
  if (requested) log::Info("requested an automatic stop", {{"system_id", system.id}});
  return requested;
}

}  // namespace puddle
