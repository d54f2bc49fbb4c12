// Metrics: counters and gauges rendered in the Prometheus text format.
//
// Every metric is declared in kDeclarations (metrics.cc) with its type and
// help text; incrementing an undeclared name is a programming error that the
// unit test catches. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace puddle {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  void Increment(const std::string& name, const MetricLabels& labels, double by = 1);
  void Set(const std::string& name, const MetricLabels& labels, double value);
  // Registers a callback that refreshes gauges just before rendering.
  void OnCollect(std::function<void(Metrics&)> collector);

  std::string RenderText();

  // True when `name` is declared.
  static bool IsDeclared(const std::string& name);

 private:
  std::mutex mutex_;
  // name -> rendered label set -> value, GUARDED_BY(mutex_)
  std::map<std::string, std::map<std::string, double>> values_;
  std::vector<std::function<void(Metrics&)>> collectors_;
};

}  // namespace puddle
