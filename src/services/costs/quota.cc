#include "services/costs/quota.h"

#include "common/json.h"
#include "services/costs/cost_report.h"

namespace puddle {

namespace {

std::string Systems(int64_t count) {
  return std::to_string(count) + (count == 1 ? " system" : " systems");
}

}  // namespace

Result<double> MonthCost(Tx& tx, const std::string& user_id, TimePoint now) {
  TimePoint from = StartOfMonth(now);
  PUDDLE_ASSIGN_OR_RETURN(auto sessions, tx.ListCostSessionsBetween(from, now, user_id));
  double cost = 0;
  for (const auto& item : sessions) cost += ClippedCost(item.session, from, now, now);
  return cost;
}

Status CheckLaunchAllowed(Tx& tx, const std::string& owner_id, LaunchKind kind,
                          const std::string& currency) {
  PUDDLE_ASSIGN_OR_RETURN(auto owner, tx.GetUserForUpdate(owner_id));
  if (!owner) return MakeError(ErrorCode::kNotFound, "user " + owner_id + " not found");
  const Quota& quota = owner->quota;
  if (!quota.systems && !quota.running_systems && !quota.monthly_budget) return Ok();

  PUDDLE_ASSIGN_OR_RETURN(auto counts, tx.CountSystemsOfUser(owner_id));
  if (kind == LaunchKind::kCreate && quota.systems && counts.systems >= *quota.systems) {
    return MakeError(ErrorCode::kQuotaExceeded,
                     "systems quota reached: " + owner->username + " may have " +
                         Systems(*quota.systems) + " and has " + std::to_string(counts.systems) +
                         "; delete one before creating another");
  }
  if (quota.running_systems && counts.running >= *quota.running_systems) {
    return MakeError(ErrorCode::kQuotaExceeded,
                     "runningSystems quota reached: " + owner->username + " may run " +
                         Systems(*quota.running_systems) + " and runs " +
                         std::to_string(counts.running) +
                         " (counting those being created, started or stopped); stop one first");
  }
  if (quota.monthly_budget) {
    PUDDLE_ASSIGN_OR_RETURN(double spent, MonthCost(tx, owner_id, tx.Now()));
    // Compared as shown, to 4 decimals: 3600 s at 0.36 per hour sums to 0.36
    // only up to rounding.
    if (json::RoundMoney(spent) >= json::RoundMoney(*quota.monthly_budget)) {
      return MakeError(ErrorCode::kBudgetExceeded,
                       "monthlyBudget used up: " + owner->username + " spent " +
                           FormatAmount(spent) + " " + currency + " of " +
                           FormatAmount(*quota.monthly_budget) + " " + currency + " in " +
                           MonthName(tx.Now()) + " (UTC); an admin can raise the budget");
    }
  }
  return Ok();
}

}  // namespace puddle
