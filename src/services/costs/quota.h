// Quota and monthly budget checks for creating and starting systems.
//
// A check runs inside the write transaction that then inserts the system or
// accepts the start, and first locks the owner's user row
// (Tx::GetUserForUpdate), so the checks of one user take turns. Of two
// concurrent requests, the second counts the first one's system. A system counts
// against runningSystems from the moment its create or start is accepted
// until it is stopped, failed or deleted (Tx::CountSystemsOfUser).
#pragma once

#include <string>

#include "common/result.h"
#include "common/time.h"
#include "storage/store.h"

namespace puddle {

enum class LaunchKind {
  kCreate,  // one more system, and one more running
  kStart,   // one more running system
};

// Fails with quota_exceeded when the owner's `systems` (create only) or
// `runningSystems` limit is reached, and with budget_exceeded when their cost
// this UTC month has reached `monthlyBudget`. Messages name the limit and the
// numbers; `currency` is shown with money. REQUIRES: `tx` is a write transaction.
Status CheckLaunchAllowed(Tx& tx, const std::string& owner_id, LaunchKind kind,
                          const std::string& currency);

// The user's cost in the UTC calendar month containing `now`: their sessions
// clipped to the month, open ones counted up to `now`.
Result<double> MonthCost(Tx& tx, const std::string& user_id, TimePoint now);

}  // namespace puddle
