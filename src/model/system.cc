#include "model/system.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <utility>

namespace puddle {
namespace {

template <typename Enum, size_t N>
std::string_view NameOf(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name;
  }
  return "unknown";
}

template <typename Enum, size_t N>
std::optional<Enum> Parse(const std::array<std::pair<Enum, std::string_view>, N>& table,
                          std::string_view name) {
  for (const auto& [candidate, candidate_name] : table) {
    if (candidate_name == name) return candidate;
  }
  return std::nullopt;
}

constexpr std::array<std::pair<SystemStatus, std::string_view>, 10> kSystemStatuses{{
    {SystemStatus::kQueued, "queued"},
    {SystemStatus::kProvisioning, "provisioning"},
    {SystemStatus::kStarting, "starting"},
    {SystemStatus::kRunning, "running"},
    {SystemStatus::kStopping, "stopping"},
    {SystemStatus::kStopped, "stopped"},
    {SystemStatus::kRebooting, "rebooting"},
    {SystemStatus::kDeleting, "deleting"},
    {SystemStatus::kDeleted, "deleted"},
    {SystemStatus::kFailed, "failed"},
}};

constexpr std::array<std::pair<VmStatus, std::string_view>, 7> kVmStatuses{{
    {VmStatus::kNone, "none"},
    {VmStatus::kPending, "pending"},
    {VmStatus::kRunning, "running"},
    {VmStatus::kStopping, "stopping"},
    {VmStatus::kStopped, "stopped"},
    {VmStatus::kTerminated, "terminated"},
    {VmStatus::kUnknown, "unknown"},
}};

constexpr std::array<std::pair<ProductStatus, std::string_view>, 5> kProductStatuses{{
    {ProductStatus::kNone, "none"},
    {ProductStatus::kStarting, "starting"},
    {ProductStatus::kReady, "ready"},
    {ProductStatus::kUnhealthy, "unhealthy"},
    {ProductStatus::kStopped, "stopped"},
}};

constexpr std::array<std::pair<OperationAction, std::string_view>, 8> kActions{{
    {OperationAction::kCreate, "create"},
    {OperationAction::kStart, "start"},
    {OperationAction::kStop, "stop"},
    {OperationAction::kReboot, "reboot"},
    {OperationAction::kDelete, "delete"},
    {OperationAction::kFail, "fail"},
    {OperationAction::kRestartProduct, "restart-product"},
    {OperationAction::kKeepAlive, "keep-alive"},
}};

constexpr std::array<std::pair<OperationReason, std::string_view>, 8> kReasons{{
    {OperationReason::kUser, "user"},
    {OperationReason::kAdmin, "admin"},
    {OperationReason::kIdle, "idle"},
    {OperationReason::kMaxUptime, "max-uptime"},
    {OperationReason::kBudget, "budget"},
    {OperationReason::kReconcile, "reconcile"},
    {OperationReason::kProcessExit, "process-exit"},
    {OperationReason::kHostRestart, "host-restart"},
}};

constexpr std::array<std::pair<OperationState, std::string_view>, 4> kOperationStates{{
    {OperationState::kQueued, "queued"},
    {OperationState::kRunning, "running"},
    {OperationState::kSucceeded, "succeeded"},
    {OperationState::kFailed, "failed"},
}};

constexpr std::array<std::pair<JobState, std::string_view>, 5> kJobStates{{
    {JobState::kQueued, "queued"},
    {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
    {JobState::kCancelled, "cancelled"},
}};

}  // namespace

std::string_view SystemStatusName(SystemStatus status) { return NameOf(kSystemStatuses, status); }
std::optional<SystemStatus> ParseSystemStatus(std::string_view name) {
  return Parse(kSystemStatuses, name);
}
std::string_view VmStatusName(VmStatus status) { return NameOf(kVmStatuses, status); }
std::optional<VmStatus> ParseVmStatus(std::string_view name) { return Parse(kVmStatuses, name); }
std::string_view ProductStatusName(ProductStatus status) {
  return NameOf(kProductStatuses, status);
}
std::optional<ProductStatus> ParseProductStatus(std::string_view name) {
  return Parse(kProductStatuses, name);
}
std::string_view OperationActionName(OperationAction action) { return NameOf(kActions, action); }
std::optional<OperationAction> ParseOperationAction(std::string_view name) {
  return Parse(kActions, name);
}
std::string_view OperationReasonName(OperationReason reason) { return NameOf(kReasons, reason); }
std::optional<OperationReason> ParseOperationReason(std::string_view name) {
  return Parse(kReasons, name);
}
std::string_view OperationStateName(OperationState state) {
  return NameOf(kOperationStates, state);
}
std::optional<OperationState> ParseOperationState(std::string_view name) {
  return Parse(kOperationStates, name);
}
std::string_view JobStateName(JobState state) { return NameOf(kJobStates, state); }
std::optional<JobState> ParseJobState(std::string_view name) { return Parse(kJobStates, name); }

std::string_view EventLevelName(EventLevel level) {
  switch (level) {
    case EventLevel::kInfo: return "info";
    case EventLevel::kWarning: return "warning";
    case EventLevel::kError: return "error";
  }
  return "info";
}

double SessionCost(const CostSession& session, TimePoint now) {
  TimePoint end = session.end.value_or(now);
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(end - session.start).count();
  seconds = std::max<int64_t>(seconds, 0);
  return static_cast<double>(seconds) * session.price_per_hour / 3600.0;
}

}  // namespace puddle
