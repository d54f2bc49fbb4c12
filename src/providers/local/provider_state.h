// The local provider's state: what the core stores for a system, and the
// provider's own record of it under <data_dir>/local/systems/<id>.json.
//
// Core state (JSON, shown to admins, never a secret):
//   {"version":1, "running":true, "pid":<product pid>,
//    "processStartTime":"<RFC 3339>", "startTicks":<product start, ticks since boot>,
//    "supervisorPid":<pid, also the process group id>, "supervisorStartTicks":<ticks>,
//    "port":<port>, "uid":<uid>, "bootId":"<host boot id at start>",
//    "subnet":<index of its /30 in the address pool>, "address":"<its namespace address>"}
// "subnet" and "address" are present only for a system in its own network
// namespace. A stopped system keeps only {"version":1, "running":false,
// "port", "uid", "subnet"}.
//
// The record adds "phase" ("launching", "running" or "stopped"), "cgroups"
// and "updatedAt". It lets a restarted Puddle adopt a process even when the
// core lost the state, and it reserves ports for systems that are running.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/time.h"

namespace puddle::local {

struct LocalState {
  bool running = false;
  int64_t pid = 0;
  int64_t start_ticks = 0;
  std::string process_start_time;
  int64_t supervisor_pid = 0;
  int64_t supervisor_start_ticks = 0;
  int port = 0;
  int64_t uid = 0;
  std::string boot_id;
  // Index of the system's /30 in providers.local.network.cidr, -1 for none.
  int subnet = -1;
  // The product's listen address inside the system's network namespace;
  // empty when the system runs in the host's network namespace.
  std::string address;
};

enum class RecordPhase { kLaunching, kRunning, kStopped };

struct SystemRecord {
  RecordPhase phase = RecordPhase::kStopped;
  LocalState state;
  std::vector<std::string> cgroups;
  TimePoint updated_at;
};

std::string SerializeState(const LocalState& state);
// An empty text is a system that never ran: not running, no port, no uid.
Result<LocalState> ParseState(std::string_view text);

std::string SerializeRecord(const SystemRecord& record);
Result<SystemRecord> ParseRecord(std::string_view text);

}  // namespace puddle::local
