// The system lifecycle as data: which request is allowed from which status,
// who may make it, and which statuses it passes through.
//
// Status changes only through this table; tests walk it exhaustively. The
// table is API.md's: an illegal request is a conflict naming the current status.
#pragma once

#include <span>
#include <vector>

#include "common/result.h"
#include "model/system.h"

namespace puddle {

// Who is asking: the system's owner, an admin acting on someone else's
// system, or Puddle itself (idle stop, reconcile).
enum class Requester { kOwner, kAdmin, kAutomatic };

struct LifecycleRule {
  OperationAction action;
  std::vector<SystemStatus> allowed_from;  // empty = any status not excluded below
  std::vector<SystemStatus> excluded_from;
  // Statuses the request passes through, first to last.
  std::vector<SystemStatus> path;
  std::vector<Requester> allowed_requesters;
};

// The whole table, one rule per action.
std::span<const LifecycleRule> LifecycleRules();

const LifecycleRule& RuleFor(OperationAction action);

// Checks that `requester` may ask for `action` while the system is `current`.
// Fails with kForbidden for a requester the rule does not list and kConflict
// (naming `current`) for a status it does not allow.
Status CheckTransition(OperationAction action, SystemStatus current, Requester requester);

// The status a system shows once `action` is accepted from `current`.
// `has_machine` is false when no provider resource exists yet, which makes a
// start provision first. keep-alive keeps the current status.
SystemStatus FirstStatus(OperationAction action, SystemStatus current, bool has_machine);

// True when `status` lies on the path of `action`, so a repeated request for
// it is already under way.
bool IsOnPath(OperationAction action, SystemStatus status);

// A running cost session stays open through these statuses (reboot,
// restart-product); it closes on stopped, failed, deleting and deleted.
bool ClosesCostSession(SystemStatus status);

}  // namespace puddle
