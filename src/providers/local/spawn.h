// Starting a detached supervisor process as an unprivileged uid.
//
// Puddle is multi-threaded, so the code between fork and exec makes only
// async-signal-safe system calls on data prepared before the fork. The
// supervisor is started through a double fork, so its parent is init (or the
// nearest subreaper) and Puddle never has to reap it, and it outlives Puddle.
// Before exec the child:
//   - resets signal dispositions and the signal mask,
//   - calls setsid(), so the supervisor leads a new session and process group,
//   - joins the system's cgroups and sets rlimits (both need root),
//   - joins the system's network namespace (setns), and in a private mount
//     namespace mounts a fresh tmpfs on each private tmpfs path,
//   - puts /dev/null on 0, 1 and 2 and the channel socket on 3, and closes
//     every other descriptor with close_range,
//   - drops privileges with setgroups(0), setresgid and setresuid, checks
//     that real, effective and saved ids all changed and that setuid(0) now
//     fails, sets no_new_privs, and only then execs. Any failure ends the
//     child before exec, so the supervisor never runs as root.
// The executable is opened by root and run through its descriptor
// (execveat with AT_EMPTY_PATH), so the uid needs no access to the directories
// above it, only the execute bit for others on the file itself.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace puddle::local {

struct SpawnRequest {
  std::string executable;  // absolute path of the puddle binary
  std::vector<std::string> argv;
  std::vector<std::string> environment;  // the supervisor's own, "NAME=value"
  uid_t uid = 0;
  gid_t gid = 0;
  // cgroup.procs files of the cgroups the supervisor joins before exec.
  std::vector<std::string> cgroup_procs_files;
  // The network namespace file (/run/netns/<name>) the supervisor joins;
  // empty to stay in Puddle's.
  std::string network_namespace_path;
  // Directories (/tmp, /dev/shm) that get a fresh tmpfs, mounted with
  // `tmpfs_options`, in a mount namespace of the supervisor's own; the host
  // never sees these mounts. Empty: the host's directories are shared.
  std::vector<std::string> private_tmpfs_paths;
  std::string tmpfs_options = "mode=1777";
  // RLIMIT_NPROC for the uid, when no pids cgroup limits the system.
  std::optional<rlim_t> process_limit;
  // Sent to the supervisor on descriptor 3; contains the product token.
  std::string spec;
  std::chrono::milliseconds timeout{30000};
};

struct SpawnedSupervisor {
  int64_t supervisor_pid = 0;
  int64_t product_pid = 0;
};

// Starts the supervisor and waits for its reply: the pids once the product's
// exec succeeded, or the error that stopped it (privilege drop, cgroup, exec).
// REQUIRES: request.uid != 0 and request.gid != 0.
Result<SpawnedSupervisor> SpawnSupervisor(const SpawnRequest& request);

}  // namespace puddle::local
