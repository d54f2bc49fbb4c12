// CPU time of processes, read from /proc/<pid>/stat.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace puddle::local {

// utime + stime + cutime + cstime of one process in clock ticks, parsed from
// the text of /proc/<pid>/stat. nullopt when the text is malformed.
std::optional<int64_t> ParseCpuTicks(std::string_view stat_text);

// Sum of ParseCpuTicks over `pids`, in seconds. A process that is gone or
// unreadable counts as zero.
double SumCpuSeconds(const std::vector<int64_t>& pids);

}  // namespace puddle::local
