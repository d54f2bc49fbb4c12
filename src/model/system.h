// Systems and the records of what happens to them: operations, jobs, events, sessions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/time.h"

namespace puddle {

enum class SystemStatus {
  kQueued,
  kProvisioning,
  kStarting,
  kRunning,
  kStopping,
  kStopped,
  kRebooting,
  kDeleting,
  kDeleted,
  kFailed,
};

enum class VmStatus { kNone, kPending, kRunning, kStopping, kStopped, kTerminated, kUnknown };

enum class ProductStatus { kNone, kStarting, kReady, kUnhealthy, kStopped };

std::string_view SystemStatusName(SystemStatus status);
std::optional<SystemStatus> ParseSystemStatus(std::string_view name);
std::string_view VmStatusName(VmStatus status);
std::optional<VmStatus> ParseVmStatus(std::string_view name);
std::string_view ProductStatusName(ProductStatus status);
std::optional<ProductStatus> ParseProductStatus(std::string_view name);

struct System {
  std::string id;
  std::string name;
  std::string owner_id;
  std::string owner_username;  // joined from users when read
  std::string product;
  std::string version;
  std::string system_type;
  std::string image_id;
  SystemStatus status = SystemStatus::kQueued;
  VmStatus vm_status = VmStatus::kNone;
  ProductStatus product_status = ProductStatus::kNone;
  double price_per_hour = 0;
  int64_t idle_timeout_minutes = -1;
  std::string provider;        // "local", "fake"
  std::string provider_state;  // opaque JSON owned by the provider
  std::string address;         // host:port the product listens on, when known
  std::string sealed_token;    // product token sealed with the token secret
  TimePoint created_at;
  TimePoint updated_at;
  std::optional<TimePoint> deleted_at;
  std::optional<TimePoint> last_activity_at;
};

enum class OperationAction {
  kCreate,
  kStart,
  kStop,
  kReboot,
  kDelete,
  kFail,
  kRestartProduct,
  kKeepAlive,
};

enum class OperationReason {
  kUser,
  kAdmin,
  kIdle,
  kMaxUptime,
  kBudget,
  kReconcile,
  kProcessExit,
  kHostRestart,
};

enum class OperationState { kQueued, kRunning, kSucceeded, kFailed };

std::string_view OperationActionName(OperationAction action);
std::optional<OperationAction> ParseOperationAction(std::string_view name);
std::string_view OperationReasonName(OperationReason reason);
std::optional<OperationReason> ParseOperationReason(std::string_view name);
std::string_view OperationStateName(OperationState state);
std::optional<OperationState> ParseOperationState(std::string_view name);

// An append-only record of one request to change a system.
struct Operation {
  std::string id;
  std::string system_id;
  OperationAction action = OperationAction::kCreate;
  OperationReason reason = OperationReason::kUser;
  std::optional<std::string> requested_by;  // user id; nullopt when Puddle asked
  std::string requested_by_username;
  OperationState state = OperationState::kQueued;
  std::string error;
  TimePoint created_at;
  TimePoint updated_at;
};

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };

std::string_view JobStateName(JobState state);
std::optional<JobState> ParseJobState(std::string_view name);

// Work for a worker, written in the same transaction as its operation.
struct Job {
  std::string id;
  std::string kind;  // "system.create", "system.stop", ...
  std::string system_id;
  std::string operation_id;
  JobState state = JobState::kQueued;
  int attempt = 0;
  int max_attempts = 5;
  TimePoint run_after;  // not claimed before this time (retry backoff)
  std::string claimed_by;
  std::optional<TimePoint> heartbeat_at;
  std::string last_error;
  TimePoint created_at;
  TimePoint updated_at;
};

enum class EventLevel { kInfo, kWarning, kError };

std::string_view EventLevelName(EventLevel level);

// A step a user sees as progress; logs are for operators.
struct Event {
  int64_t sequence = 0;  // ascending order and cursor
  std::string id;
  std::string system_id;
  std::optional<std::string> operation_id;
  EventLevel level = EventLevel::kInfo;
  std::string message;
  TimePoint time;
};

// A span of time a system was running, priced when it opened.
struct CostSession {
  int64_t id = 0;
  std::string system_id;
  std::string user_id;
  std::string product;
  std::string system_type;
  TimePoint start;
  std::optional<TimePoint> end;
  double price_per_hour = 0;
};

// Cost of a session up to `now` (or its end), in whole seconds.
double SessionCost(const CostSession& session, TimePoint now);

}  // namespace puddle
