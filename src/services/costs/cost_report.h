// Cost reports: cost sessions clipped to a time window and summed per user,
// product or system type, as JSON or CSV.
//
// Pure functions over sessions already read from the store, so tests can
// script a timeline and check hours and costs by hand. Time is counted in
// whole seconds of each session inside the window, at the session's price.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "common/result.h"
#include "common/time.h"
#include "model/system.h"
#include "storage/store.h"

namespace puddle {

enum class CostGroupBy { kUser, kProduct, kSystemType };

std::string_view CostGroupByName(CostGroupBy group_by);  // "user", "product", "systemType"
std::optional<CostGroupBy> ParseCostGroupBy(std::string_view name);

struct CostReportItem {
  // Username for kUser, product id for kProduct, system type id for kSystemType.
  std::string key;
  double hours = 0;
  double cost = 0;
};

struct CostReport {
  TimePoint from;  // inclusive
  TimePoint to;    // exclusive
  CostGroupBy group_by = CostGroupBy::kUser;
  std::string currency;
  std::vector<CostReportItem> items;  // by key, ascending
  double total = 0;
};

// Whole seconds of `session` inside [from, to), an open session counting up
// to `now`.
int64_t ClippedSeconds(const CostSession& session, TimePoint from, TimePoint to, TimePoint now);

// Cost of `session` inside [from, to): clipped seconds at its price per hour.
double ClippedCost(const CostSession& session, TimePoint from, TimePoint to, TimePoint now);

// Sums `sessions` clipped to [from, to) per key. Keys with no time in the
// window are left out.
CostReport BuildCostReport(const std::vector<UserCostSession>& sessions, CostGroupBy group_by,
                           TimePoint from, TimePoint to, TimePoint now, std::string currency);

// {"from","to","groupBy","currency","items":[{"key","hours","cost"}],"total"};
// hours and money rounded to 4 decimals.
boost::json::object CostReportJson(const CostReport& report);

// "key,hours,cost" then one row per item, CRLF line ends (RFC 4180); a key
// with a comma, quote or line break is quoted, and one starting with = + - @
// gets a leading apostrophe so spreadsheets do not run it as a formula.
std::string CostReportCsv(const CostReport& report);

// Reads a report bound: RFC 3339 or YYYY-MM-DD (midnight UTC). Fails with
// validation_failed on `field` ("query.from").
Result<TimePoint> ParseReportTime(std::string_view text, const std::string& field);

// Midnight UTC of the first day of the month containing `time`, and of the next month.
TimePoint StartOfMonth(TimePoint time);
TimePoint StartOfNextMonth(TimePoint time);
// "2026-03" for a time in March 2026 (UTC).
std::string MonthName(TimePoint time);

// Formats money or hours with 4 decimals and no exponent ("0.0500"), for text.
std::string FormatAmount(double amount);

}  // namespace puddle
