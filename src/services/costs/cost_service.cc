#include "services/costs/cost_service.h"

namespace puddle {

Result<CostReport> CostService::Report(const Actor& actor, const CostReportRequest& request) {
  return store_.ReadValue<CostReport>([&](Tx& tx) -> Result<CostReport> {
    TimePoint now = tx.Now();
    TimePoint from = request.from.value_or(StartOfMonth(now));
    TimePoint to = request.to.value_or(now);
    if (from >= to) {
      return MakeError(ErrorCode::kValidationFailed,
                       "from (" + FormatTime(from) + ") must be before to (" + FormatTime(to) +
                           ")",
                       "query.from");
    }
    std::optional<std::string> owner;
    if (!actor.IsAdmin()) owner = actor.user_id;
    PUDDLE_ASSIGN_OR_RETURN(auto sessions, tx.ListCostSessionsBetween(from, to, owner));
    return BuildCostReport(sessions, request.group_by, from, to, now, currency_);
  });
}

}  // namespace puddle
