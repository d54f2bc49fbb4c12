// The stored activity of a system: the latest time each signal saw work, and
// the state of its automatic stops (warning, keep-alive).
#pragma once

#include <optional>
#include <string>

#include "common/time.h"

namespace puddle {

// One row of system_activity. Absent fields were never measured.
struct ActivityRecord {
  std::string system_id;

  // Latest request or client message through the access proxy that counts as
  // activity, merged from every Puddle process as the maximum.
  std::optional<TimePoint> proxy_active_at;

  // The product's own report (Jupyter's kernels), from the latest check.
  std::optional<bool> product_busy;
  std::optional<TimePoint> product_busy_since;  // start of the current busy spell
  std::optional<TimePoint> product_active_at;   // latest time it was busy or active
  std::optional<TimePoint> product_checked_at;

  // CPU use of the system's processes over the configured window.
  std::optional<bool> cpu_busy;
  std::optional<double> cpu_percent;  // percent of one core
  std::optional<TimePoint> cpu_busy_since;
  std::optional<TimePoint> cpu_active_at;
  std::optional<TimePoint> cpu_checked_at;

  // The latest keep-alive: when it was asked for and until when it postpones
  // an automatic stop. One made before the current run began is ignored.
  std::optional<TimePoint> keep_alive_at;
  std::optional<TimePoint> keep_alive_until;

  // The latest stop warning: when it was sent, the stop time it announced and
  // the reason ("idle" or "max-uptime").
  std::optional<TimePoint> warned_at;
  std::optional<TimePoint> warned_stop_at;
  std::string warned_reason;
};

}  // namespace puddle
