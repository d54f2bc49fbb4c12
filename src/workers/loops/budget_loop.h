// BudgetLoop: watches the monthly budgets of users who have one.
//
// Each run computes every such user's cost in the current UTC month (sessions
// clipped to the month, open ones up to now). At 80 % or more it adds a
// warning event to each of the user's running systems, once per user per
// month (recorded in the store, so a restart or another process does not warn
// again). At 100 % or more, when costs.budget.stopRunningSystems is set, it
// requests a stop of the user's running, starting and rebooting systems with
// reason `budget`. Creating and starting past the budget is refused elsewhere
// (CheckLaunchAllowed). Thread-safe; RunOnce is called from one periodic thread.
#pragma once

#include "config/config.h"
#include "services/systems/system_service.h"
#include "storage/store.h"

namespace puddle {

struct BudgetRunSummary {
  int warned_users = 0;     // users warned in this run
  int stop_requests = 0;    // stops accepted in this run
};

class BudgetLoop {
 public:
  // Share of the budget at which users are warned.
  static constexpr double kWarningShare = 0.8;

  BudgetLoop(Store& store, SystemService& systems, const Config& config)
      : store_(store), systems_(systems), config_(config) {}

  Result<BudgetRunSummary> RunOnce();

 private:
  Store& store_;
  SystemService& systems_;
  const Config& config_;
};

}  // namespace puddle
