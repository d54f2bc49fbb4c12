// Waiting for a system to reach a status, printing its events as progress.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>

#include <boost/json.hpp>

#include "cli/api_client.h"
#include "cli/client_environment.h"
#include "common/clock.h"
#include "common/result.h"

namespace puddle::cli {

inline constexpr std::chrono::milliseconds kWaitPollInterval{1000};

struct WaitSpec {
  std::string system_id;
  std::string target_status;  // "running", "stopped", "deleted", ...
  std::chrono::seconds timeout{900};
  // After an action, the system is on its way to `target_status`; landing in
  // another settled status (running or stopped) means it will not get there.
  // `systems wait` leaves this false, since it waits for someone else's action.
  bool end_at_other_settled_status = false;
  // Events after this cursor are printed; nullopt prints them all.
  std::optional<std::string> events_cursor;
};

enum class WaitOutcome {
  kReached,
  kFailed,     // the system is `failed` and that was not the target
  kElsewhere,  // the system settled where the target cannot follow (deleted, ...)
  kTimedOut,
};

struct WaitResult {
  WaitOutcome outcome = WaitOutcome::kTimedOut;
  std::string status;         // the last status seen
  boost::json::value system;  // the last GET /api/v1/systems/{id} body, parsed
  std::string system_body;    // the same, as received
};

// Polls the system and its events every kWaitPollInterval until the target
// status or `spec.timeout`, writing one line per new event ("<time> <level>
// <message>") to `progress`. An unreachable or rate-limited server is retried
// until the deadline, with a warning on `progress`; other failed requests end
// the wait with their error.
Result<WaitResult> WaitForStatus(ApiClient& client, const WaitSpec& spec, const Clock& clock,
                                 const Sleeper& sleep, std::ostream& progress);

// Returns the cursor just after the system's newest event, so that a wait
// started after an action prints only the events that action causes.
Result<std::string> LatestEventsCursor(ApiClient& client, const std::string& system_id);

}  // namespace puddle::cli
