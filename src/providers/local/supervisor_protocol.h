// What the local provider and its supervisor process exchange.
//
// The provider starts `<puddle> supervise --system-id=<id>` with a connected
// Unix socket on descriptor 3. It writes one SupervisorSpec as JSON and shuts
// down its writing side. The supervisor replies with one line,
// "ok <supervisor pid> <product pid>" once the product's exec succeeded, or
// "error <message>". The spec carries the product token inside its
// environment, so it never touches argv or a file.
//
// When the product ends, the supervisor writes an ExitRecord to
// <system dir>/exit-status.json. It runs as the system's uid, so the product
// could rewrite that file: the record only describes the system to its own
// owner and is never trusted for anything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace puddle::local {

inline constexpr int kSupervisorChannelFd = 3;
inline constexpr std::string_view kSupervisorSubcommand = "supervise";
inline constexpr std::string_view kLogFileName = "product.log";
inline constexpr std::string_view kExitRecordFileName = "exit-status.json";

struct SupervisorSpec {
  std::string system_dir;  // absolute; contains the log and the exit record
  std::string home_dir;    // absolute; the product's working directory
  std::vector<std::string> argv;
  std::vector<std::string> environment;  // "NAME=value"
  // Memory cgroup directory, read to tell an out-of-memory kill apart; empty
  // when the system has no memory cgroup.
  std::string memory_cgroup;
};

std::string SerializeSupervisorSpec(const SupervisorSpec& spec);
Result<SupervisorSpec> ParseSupervisorSpec(std::string_view text);

struct ExitRecord {
  int64_t pid = 0;
  int64_t start_ticks = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool out_of_memory = false;

  // "exit status 1", "killed by signal 9", "killed by signal 9 (out of memory)".
  std::string Description() const;
};

std::string SerializeExitRecord(const ExitRecord& record);
Result<ExitRecord> ParseExitRecord(std::string_view text);

// Builds the record for a wait status from waitpid.
ExitRecord ExitRecordFromWaitStatus(int64_t pid, int64_t start_ticks, int wait_status);

}  // namespace puddle::local
