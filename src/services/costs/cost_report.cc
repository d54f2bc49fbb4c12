#include "services/costs/cost_report.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "common/json.h"

namespace puddle {

std::string_view CostGroupByName(CostGroupBy group_by) {
  switch (group_by) {
    case CostGroupBy::kUser: return "user";
    case CostGroupBy::kProduct: return "product";
    case CostGroupBy::kSystemType: return "systemType";
  }
  return "user";
}

std::optional<CostGroupBy> ParseCostGroupBy(std::string_view name) {
  if (name == "user") return CostGroupBy::kUser;
  if (name == "product") return CostGroupBy::kProduct;
  if (name == "systemType") return CostGroupBy::kSystemType;
  return std::nullopt;
}

int64_t ClippedSeconds(const CostSession& session, TimePoint from, TimePoint to, TimePoint now) {
  TimePoint start = std::max(session.start, from);
  TimePoint end = std::min(session.end.value_or(now), to);
  if (end <= start) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(end - start).count();
}

double ClippedCost(const CostSession& session, TimePoint from, TimePoint to, TimePoint now) {
  return static_cast<double>(ClippedSeconds(session, from, to, now)) * session.price_per_hour /
         3600.0;
}

CostReport BuildCostReport(const std::vector<UserCostSession>& sessions, CostGroupBy group_by,
                           TimePoint from, TimePoint to, TimePoint now, std::string currency) {
  struct Sum {
    int64_t seconds = 0;
    double cost = 0;
  };
  std::map<std::string, Sum> sums;
  for (const auto& item : sessions) {
    const CostSession& session = item.session;
    int64_t seconds = ClippedSeconds(session, from, to, now);
    if (seconds <= 0) continue;
    const std::string& key = group_by == CostGroupBy::kUser      ? item.username
                             : group_by == CostGroupBy::kProduct ? session.product
                                                                 : session.system_type;
    Sum& sum = sums[key];
    sum.seconds += seconds;
    sum.cost += static_cast<double>(seconds) * session.price_per_hour / 3600.0;
  }

  CostReport report;
  report.from = from;
  report.to = to;
  report.group_by = group_by;
  report.currency = std::move(currency);
  for (const auto& [key, sum] : sums) {
    report.items.push_back({key, static_cast<double>(sum.seconds) / 3600.0, sum.cost});
    report.total += sum.cost;
  }
  return report;
}

boost::json::object CostReportJson(const CostReport& report) {
  boost::json::array items;
  for (const auto& item : report.items) {
    items.push_back({{"key", item.key},
                     {"hours", json::RoundMoney(item.hours)},
                     {"cost", json::RoundMoney(item.cost)}});
  }
  return {{"from", FormatTime(report.from)},
          {"to", FormatTime(report.to)},
          {"groupBy", CostGroupByName(report.group_by)},
          {"currency", report.currency},
          {"items", std::move(items)},
          {"total", json::RoundMoney(report.total)}};
}

namespace {

std::string CsvField(const std::string& text) {
  std::string value = text;
  if (!value.empty() && std::string_view("=+-@\t\r").find(value[0]) != std::string_view::npos) {
    value.insert(value.begin(), '\'');
  }
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

}  // namespace

std::string CostReportCsv(const CostReport& report) {
  std::string csv = "key,hours,cost\r\n";
  for (const auto& item : report.items) {
    csv += CsvField(item.key) + "," + FormatAmount(item.hours) + "," + FormatAmount(item.cost) +
           "\r\n";
  }
  return csv;
}

Result<TimePoint> ParseReportTime(std::string_view text, const std::string& field) {
  auto parsed = ParseTime(text);
  if (!parsed) {
    return MakeError(ErrorCode::kValidationFailed,
                     field + " \"" + std::string(text) +
                         "\" is not a time: use RFC 3339 (2026-03-01T00:00:00Z) or a date "
                         "(2026-03-01)",
                     field);
  }
  return *parsed;
}

TimePoint StartOfMonth(TimePoint time) {
  auto day = std::chrono::floor<std::chrono::days>(time);
  std::chrono::year_month_day date{day};
  std::chrono::sys_days first{date.year() / date.month() / std::chrono::day{1}};
  return std::chrono::time_point_cast<std::chrono::milliseconds>(first);
}

TimePoint StartOfNextMonth(TimePoint time) {
  auto day = std::chrono::floor<std::chrono::days>(time);
  std::chrono::year_month_day date{day};
  auto next = date.year() / date.month() / std::chrono::day{1} + std::chrono::months{1};
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::sys_days{next});
}

std::string MonthName(TimePoint time) {
  std::chrono::year_month_day date{std::chrono::floor<std::chrono::days>(time)};
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()));
  return buffer;
}

std::string FormatAmount(double amount) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.4f", json::RoundMoney(amount));
  return buffer;
}

}  // namespace puddle
