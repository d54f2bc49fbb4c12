// Routes under /api/v1/reports: the cost report.
#include "api/handler_support.h"
#include "api/handlers/routes.h"
#include "services/costs/cost_service.h"

namespace puddle::api {
namespace {

Result<CostReportRequest> ReadReportQuery(const RequestContext& context) {
  PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"from", "to", "groupBy"}));
  CostReportRequest request;
  if (auto from = QueryValue(context, "from")) {
    PUDDLE_ASSIGN_OR_RETURN(request.from, ParseReportTime(*from, "query.from"));
  }
  if (auto to = QueryValue(context, "to")) {
    PUDDLE_ASSIGN_OR_RETURN(request.to, ParseReportTime(*to, "query.to"));
  }
  if (auto group_by = QueryValue(context, "groupBy")) {
    auto parsed = ParseCostGroupBy(*group_by);
    if (!parsed) {
      return MakeError(ErrorCode::kValidationFailed,
                       "groupBy \"" + *group_by + "\" is not one of user, product, systemType",
                       "query.groupBy");
    }
    request.group_by = *parsed;
  }
  return request;
}

}  // namespace

void AddCostRoutes(Router& router, ApiDependencies& deps) {
  router.Add({"GET", "/api/v1/reports/costs", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto request, ReadReportQuery(context));
                CostService costs(deps.store, deps.config.currency);
                PUDDLE_ASSIGN_OR_RETURN(auto report, costs.Report(ActorOf(context), request));
                std::string_view accept = context.request.Header("accept");
                if (accept.find("text/csv") != std::string_view::npos) {
                  http::Response response;
                  response.SetHeader("content-type", "text/csv; charset=utf-8; header=present");
                  response.body = CostReportCsv(report);
                  return response;
                }
                return JsonReply(200, CostReportJson(report));
              },
              {"Costs in a time window per user (by username), product or system type; "
               "users see their own, admins everyone's. Accept: text/csv gives key,hours,cost",
               "reports", 200, "", "CostReport", {"from", "to", "groupBy"}}});
}

}  // namespace puddle::api
