#include "cli/system_output.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace puddle::cli {
namespace {

std::string FormatNumber(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.4f", value);
  std::string formatted(text);
  while (!formatted.empty() && formatted.back() == '0') formatted.pop_back();
  if (!formatted.empty() && formatted.back() == '.') formatted.pop_back();
  return formatted;
}

std::string ProductText(const boost::json::object& system) {
  return FieldText(system, "product") + " " + FieldText(system, "version");
}

std::string IdleTimeoutText(const boost::json::object& system) {
  const boost::json::value* minutes = system.if_contains("idleTimeoutMinutes");
  if (minutes == nullptr || !minutes->is_number()) return "-";
  if (minutes->to_number<double>() < 0) return "never";
  return FieldText(system, "idleTimeoutMinutes") + " min";
}

std::string ActivityText(const boost::json::object& system) {
  const boost::json::value* activity = system.if_contains("activity");
  if (activity == nullptr || !activity->is_object()) return "-";
  const boost::json::object& fields = activity->as_object();
  std::string text = FieldText(fields, "state");
  if (fields.if_contains("since") && !fields.at("since").is_null()) {
    text += " since " + FieldText(fields, "since");
  }
  if (fields.if_contains("reason") && !fields.at("reason").is_null()) {
    text += " (" + FieldText(fields, "reason") + ")";
  }
  if (fields.if_contains("idleStopAt") && !fields.at("idleStopAt").is_null()) {
    text += "; stops when idle at " + FieldText(fields, "idleStopAt");
  }
  return text;
}

}  // namespace

std::string FieldText(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) return "-";
  if (value->is_string()) return std::string(value->as_string());
  if (value->is_int64()) return std::to_string(value->as_int64());
  if (value->is_uint64()) return std::to_string(value->as_uint64());
  if (value->is_double()) return FormatNumber(value->as_double());
  if (value->is_bool()) return value->as_bool() ? "true" : "false";
  return boost::json::serialize(*value);
}

void PrintSystemsTable(const boost::json::array& systems, std::ostream& out) {
  if (systems.empty()) {
    out << "No systems.\n";
    return;
  }

  std::vector<std::vector<std::string>> rows;
  rows.push_back({"ID", "NAME", "OWNER", "PRODUCT", "TYPE", "STATUS", "CREATED"});
  for (const auto& item : systems) {
    if (!item.is_object()) continue;
    const boost::json::object& system = item.as_object();
    rows.push_back({FieldText(system, "id"), FieldText(system, "name"), FieldText(system, "owner"),
                    ProductText(system), FieldText(system, "systemType"),
                    FieldText(system, "status"), FieldText(system, "createdAt")});
  }

  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

void PrintSystemSummary(const boost::json::object& system, std::ostream& out) {
  std::string status = FieldText(system, "status") + " (machine: " + FieldText(system, "vmStatus") +
                       ", product: " + FieldText(system, "productStatus") + ")";
  const std::pair<const char*, std::string> lines[] = {
      {"ID", FieldText(system, "id")},
      {"Name", FieldText(system, "name")},
      {"Owner", FieldText(system, "owner")},
      {"Product", ProductText(system)},
      {"System type", FieldText(system, "systemType")},
      {"Status", status},
      {"URL", FieldText(system, "url")},
      {"Direct URL", FieldText(system, "directUrl")},
      {"Price per hour", FieldText(system, "pricePerHour")},
      {"Cost", FieldText(system, "cost")},
      {"Idle timeout", IdleTimeoutText(system)},
      {"Activity", ActivityText(system)},
      {"Created", FieldText(system, "createdAt")},
      {"Updated", FieldText(system, "updatedAt")},
  };
  for (const auto& [label, value] : lines) {
    std::string padded = std::string(label) + ":";
    padded.resize(16, ' ');
    out << padded << value << "\n";
  }
}

}  // namespace puddle::cli
