#include "common/metrics.h"

#include <cmath>
#include <cstdio>

namespace puddle {
namespace {

struct Declaration {
  const char* name;
  const char* type;
  const char* help;
};

constexpr Declaration kDeclarations[] = {
    {"puddle_http_requests_total", "counter", "HTTP requests by route, method and status."},
    {"puddle_jobs_total", "counter", "Finished jobs by kind and outcome."},
    {"puddle_systems", "gauge", "Systems by status, excluding deleted ones."},
};

const Declaration* Find(const std::string& name) {
  for (const auto& declaration : kDeclarations) {
    if (name == declaration.name) return &declaration;
  }
  return nullptr;
}

std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string RenderLabels(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  return out + "}";
}

std::string FormatValue(double value) {
  char buffer[32];
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%g", value);
  }
  return buffer;
}

}  // namespace

bool Metrics::IsDeclared(const std::string& name) { return Find(name) != nullptr; }

void Metrics::Increment(const std::string& name, const MetricLabels& labels, double by) {
  std::lock_guard lock(mutex_);
  values_[name][RenderLabels(labels)] += by;
}

void Metrics::Set(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard lock(mutex_);
  values_[name][RenderLabels(labels)] = value;
}

void Metrics::OnCollect(std::function<void(Metrics&)> collector) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::RenderText() {
  std::vector<std::function<void(Metrics&)>> collectors;
  {
    std::lock_guard lock(mutex_);
    collectors = collectors_;
  }
  for (auto& collect : collectors) collect(*this);

  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& declaration : kDeclarations) {
    out += std::string("# HELP ") + declaration.name + " " + declaration.help + "\n";
    out += std::string("# TYPE ") + declaration.name + " " + declaration.type + "\n";
    auto found = values_.find(declaration.name);
    if (found == values_.end()) continue;
    for (const auto& [labels, value] : found->second) {
      out += declaration.name + labels + " " + FormatValue(value) + "\n";
    }
  }
  return out;
}

}  // namespace puddle
