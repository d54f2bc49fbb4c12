#include "services/systems/lifecycle.h"

#include <algorithm>
#include <array>
#include <string>

namespace puddle {
namespace {

using S = SystemStatus;
using R = Requester;

const std::vector<LifecycleRule>& Table() {
  static const std::vector<LifecycleRule> rules = {
      {OperationAction::kCreate, {}, {}, {S::kQueued, S::kProvisioning, S::kStarting, S::kRunning},
       {R::kOwner}},
      {OperationAction::kStart, {S::kStopped, S::kFailed}, {},
       {S::kProvisioning, S::kStarting, S::kRunning}, {R::kOwner, R::kAdmin}},
      {OperationAction::kStop, {S::kRunning, S::kStarting, S::kRebooting}, {},
       {S::kStopping, S::kStopped}, {R::kOwner, R::kAdmin, R::kAutomatic}},
      {OperationAction::kReboot, {S::kRunning}, {}, {S::kRebooting, S::kStarting, S::kRunning},
       {R::kOwner, R::kAdmin}},
      {OperationAction::kRestartProduct, {S::kRunning}, {}, {S::kStarting, S::kRunning},
       {R::kAdmin}},
      {OperationAction::kDelete, {}, {S::kDeleting, S::kDeleted}, {S::kDeleting, S::kDeleted},
       {R::kOwner, R::kAdmin}},
      {OperationAction::kFail, {}, {S::kStopped, S::kFailed, S::kDeleted}, {S::kFailed},
       {R::kAdmin, R::kAutomatic}},
      {OperationAction::kKeepAlive, {S::kRunning}, {}, {}, {R::kOwner, R::kAdmin}},
  };
  return rules;
}

bool Contains(const std::vector<SystemStatus>& statuses, SystemStatus status) {
  return std::find(statuses.begin(), statuses.end(), status) != statuses.end();
}

}  // namespace

std::span<const LifecycleRule> LifecycleRules() { return Table(); }

const LifecycleRule& RuleFor(OperationAction action) {
  for (const auto& rule : Table()) {
    if (rule.action == action) return rule;
  }
  return Table().front();  // unreachable: every action has a rule
}

Status CheckTransition(OperationAction action, SystemStatus current, Requester requester) {
  const LifecycleRule& rule = RuleFor(action);
  const auto& who = rule.allowed_requesters;
  if (std::find(who.begin(), who.end(), requester) == who.end()) {
    return MakeError(ErrorCode::kForbidden, "only an admin may " +
                                                std::string(OperationActionName(action)) +
                                                " this system");
  }

  bool allowed = rule.allowed_from.empty() ? !Contains(rule.excluded_from, current)
                                           : Contains(rule.allowed_from, current);
  if (action == OperationAction::kCreate) allowed = false;  // creation makes a new system
  if (!allowed) {
    return ConflictError("cannot " + std::string(OperationActionName(action)) +
                             " a system that is " + std::string(SystemStatusName(current)),
                         std::string(SystemStatusName(current)));
  }
  return Ok();
}

SystemStatus FirstStatus(OperationAction action, SystemStatus current, bool has_machine) {
  switch (action) {
    case OperationAction::kCreate: return SystemStatus::kQueued;
    case OperationAction::kStart:
      return has_machine ? SystemStatus::kStarting : SystemStatus::kProvisioning;
    case OperationAction::kStop: return SystemStatus::kStopping;
    case OperationAction::kReboot: return SystemStatus::kRebooting;
    case OperationAction::kRestartProduct: return SystemStatus::kStarting;
    case OperationAction::kDelete: return SystemStatus::kDeleting;
    case OperationAction::kFail: return SystemStatus::kFailed;
    case OperationAction::kKeepAlive: return current;
  }
  return current;
}

bool IsOnPath(OperationAction action, SystemStatus status) {
  return Contains(RuleFor(action).path, status);
}

bool ClosesCostSession(SystemStatus status) {
  return status == SystemStatus::kStopped || status == SystemStatus::kFailed ||
         status == SystemStatus::kDeleting || status == SystemStatus::kDeleted;
}

}  // namespace puddle
