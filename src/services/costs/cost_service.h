// CostService: the cost report for the API. Users get their own costs and
// admins everyone's. Thread-safe, because it keeps only references.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "services/actor.h"
#include "services/costs/cost_report.h"
#include "storage/store.h"

namespace puddle {

struct CostReportRequest {
  std::optional<TimePoint> from;  // default: start of the current UTC month
  std::optional<TimePoint> to;    // default: now
  CostGroupBy group_by = CostGroupBy::kUser;
};

class CostService {
 public:
  CostService(Store& store, std::string currency)
      : store_(store), currency_(std::move(currency)) {}

  // Fails with validation_failed on query.from when from is not before to.
  Result<CostReport> Report(const Actor& actor, const CostReportRequest& request);

 private:
  Store& store_;
  std::string currency_;
};

}  // namespace puddle
