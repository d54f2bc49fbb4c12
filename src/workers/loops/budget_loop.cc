#include "workers/loops/budget_loop.h"

#include <cmath>
#include <map>

#include "common/json.h"
#include "common/log.h"
#include "services/costs/cost_report.h"

namespace puddle {
namespace {

struct UserState {
  User user;
  double spent = 0;
  std::vector<System> systems;  // running, starting or rebooting
};

std::string Percent(double spent, double budget) {
  if (budget <= 0) return "all";
  // The epsilon keeps 0.288 of 0.36 at 80 % rather than 79.999...
  return std::to_string(static_cast<int64_t>(std::floor(spent / budget * 100 + 1e-9))) + " %";
}

}  // namespace

Result<BudgetRunSummary> BudgetLoop::RunOnce() {
  TimePoint now = store_.clock().Now();
  TimePoint month_start = StartOfMonth(now);
  std::string month = MonthName(now);

  std::map<std::string, UserState> users;
  PUDDLE_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto with_budget, tx.ListUsersWithBudget());
    if (with_budget.empty()) return Ok();
    for (auto& user : with_budget) users[user.id].user = std::move(user);
    PUDDLE_ASSIGN_OR_RETURN(auto sessions,
                            tx.ListCostSessionsBetween(month_start, now, std::nullopt));
    for (const auto& item : sessions) {
      auto found = users.find(item.session.user_id);
      if (found == users.end()) continue;
      found->second.spent += ClippedCost(item.session, month_start, now, now);
    }
    PUDDLE_ASSIGN_OR_RETURN(auto systems,
                            tx.ListSystemsByStatus({SystemStatus::kRunning, SystemStatus::kStarting,
                                                    SystemStatus::kRebooting}));
    for (auto& system : systems) {
      auto found = users.find(system.owner_id);
      if (found != users.end()) found->second.systems.push_back(std::move(system));
    }
    return Ok();
  }));

  BudgetRunSummary summary;
  for (auto& [id, state] : users) {
    double budget = state.user.quota.monthly_budget.value_or(0);
    // Compared to 4 decimals, as money is shown.
    double spent = json::RoundMoney(state.spent);
    if (spent < json::RoundMoney(budget * kWarningShare) || state.systems.empty()) continue;
    std::string amounts = FormatAmount(state.spent) + " of " + FormatAmount(budget) + " " +
                          config_.currency + " in " + month + " (UTC)";

    std::vector<const System*> running;
    for (const auto& system : state.systems) {
      if (system.status == SystemStatus::kRunning) running.push_back(&system);
    }
    if (!running.empty()) {
      auto warned = store_.WriteValue<bool>([&](Tx& tx) -> Result<bool> {
        PUDDLE_ASSIGN_OR_RETURN(bool first, tx.RecordBudgetWarning(id, month));
        if (!first) return false;
        std::string message = state.user.username + " has used " +
                              Percent(spent, budget) + " of the monthly budget: " + amounts;
        for (const System* system : running) {
          PUDDLE_RETURN_IF_ERROR(
              tx.InsertEvent(system->id, std::nullopt, EventLevel::kWarning, message));
        }
        return true;
      });
      if (!warned) {
        log::Warning("recording a budget warning failed",
                     {{"user", state.user.username}, {"error", warned.error().message}});
      } else if (*warned) {
        ++summary.warned_users;
        log::Info("warned a user about their monthly budget",
                  {{"user", state.user.username}, {"spent", FormatAmount(state.spent)}});
      }
    }

    if (!config_.budget_stop_running_systems || spent < json::RoundMoney(budget)) continue;
    for (const auto& system : state.systems) {
      auto stopped = systems_.RequestAutomatic(
          system.id, OperationAction::kStop, OperationReason::kBudget,
          "Stopping because " + state.user.username + " used up the monthly budget: " + amounts);
      if (stopped) {
        ++summary.stop_requests;
        log::Info("stopping a system over budget",
                  {{"system_id", system.id}, {"user", state.user.username}});
      } else if (stopped.error().code != ErrorCode::kConflict) {
        log::Warning("stopping a system over budget failed",
                     {{"system_id", system.id}, {"error", stopped.error().message}});
      }
    }
  }
  return summary;
}

}  // namespace puddle
