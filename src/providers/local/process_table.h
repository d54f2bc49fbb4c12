// Reading the host's process table under /proc.
//
// A process is identified by its pid together with its start time in clock
// ticks since boot (field 22 of /proc/<pid>/stat), so a pid the kernel reused
// for another process is never mistaken for ours. Every function is
// thread-safe and returns nullopt (or an empty list) for a process that is
// gone or unreadable, because processes can vanish between two reads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace puddle::local {

// The fields of /proc/<pid>/stat the provider uses.
struct ProcessStat {
  int64_t pid = 0;
  char state = '?';  // 'R', 'S', 'Z' (zombie), ...
  int64_t ppid = 0;
  int64_t pgid = 0;
  int64_t sid = 0;
  int64_t start_ticks = 0;
};

std::optional<ProcessStat> ReadProcessStat(int64_t pid);

// Real uid of the process (first field of "Uid:" in /proc/<pid>/status).
std::optional<uid_t> ReadProcessUid(int64_t pid);

// Value of `name` in the environment the process was started with
// (/proc/<pid>/environ), or nullopt when it is unset or unreadable.
std::optional<std::string> ReadProcessEnvironmentValue(int64_t pid, std::string_view name);

// Arguments from /proc/<pid>/cmdline.
std::vector<std::string> ReadProcessArguments(int64_t pid);

// Pids of every process on the host, in no particular order.
std::vector<int64_t> ListProcessIds();

// True when `pid` exists, has not exited (a zombie has) and started at
// `start_ticks`.
bool IsProcessAlive(int64_t pid, int64_t start_ticks);

// Returns the time the host booted, in seconds since the Unix epoch (btime in
// /proc/stat), or nullopt when it is unreadable.
std::optional<int64_t> ReadBootTimeSeconds();

// Reads the host's boot id (normally /proc/sys/kernel/random/boot_id).
Result<std::string> ReadBootId(const std::string& path);

// Formats a start time in ticks since boot as RFC 3339, using the boot time
// in /proc/stat. Returns an empty string when the boot time is unreadable.
std::string FormatProcessStartTime(int64_t start_ticks);

// Sends `signal` to the process only if it is still the one that started at
// `start_ticks`: the check and the signal go through one pidfd, so a reused
// pid is never signalled. Returns false when the process is gone.
bool SignalProcess(int64_t pid, int64_t start_ticks, int signal);

}  // namespace puddle::local
