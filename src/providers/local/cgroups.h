// Per-system resource limits through cgroup v1 (memory, cpu, pids).
//
// Each system gets one directory per controller, nested under the cgroup
// Puddle itself runs in (<mount>/<Puddle's cgroup>/puddle-<installation>/<id>),
// so the systems stay inside whatever limits the host put on Puddle. The
// directories belong to root; the system's uid cannot change its limits.
// Thread-safe.
//
// Limitations: cgroup v2 is not supported yet. On a host with only cgroup v2
// (or without the v1 controllers) CreateSystemCgroups returns no directories,
// and the caller falls back to rlimits, which cannot limit memory or CPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace puddle::local {

struct CgroupLimits {
  int64_t memory_bytes = 0;  // 0: no limit
  int64_t cpus = 0;          // whole CPUs of quota per period; 0: no limit
  int64_t pids_max = 0;      // 0: no limit
};

struct SystemCgroups {
  // One directory per controller that is enforced, to join and later remove.
  std::vector<std::string> directories;
  std::string memory;  // the memory controller's directory, empty when absent
  bool memory_limited = false;
  bool cpu_limited = false;
  bool pids_limited = false;
};

// Creates the system's cgroups and writes `limits`. A controller the host
// lacks, or one whose directory cannot be created, is skipped and listed in
// `warnings`; the result may therefore be empty.
SystemCgroups CreateSystemCgroups(const std::string& group_name, const std::string& system_id,
                                  const CgroupLimits& limits, std::vector<std::string>* warnings);

// The system's cgroup directories that process `pid` is in, read from
// /proc/<pid>/cgroup; used to adopt a process whose record was lost.
std::vector<std::string> FindSystemCgroupsOf(int64_t pid, const std::string& group_name,
                                             const std::string& system_id);

// Pids of every process in the given cgroup directories.
std::vector<int64_t> ListCgroupProcesses(const std::vector<std::string>& directories);

// Removes the directories, then their parent when it became empty. Returns
// the directories that remain because a process is still in them.
std::vector<std::string> RemoveSystemCgroups(const std::vector<std::string>& directories);

}  // namespace puddle::local
