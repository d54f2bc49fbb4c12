// Running a helper program (iptables, ip) without a shell and collecting its
// output. Safe to call from any thread of a multi-threaded process: the child
// makes only async-signal-safe calls between fork and execve.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace puddle::local {

struct CommandOutput {
  int exit_status = -1;  // -1 when the command ended by a signal
  std::string standard_output;
  std::string standard_error;
};

// "path arg1 arg2", for messages.
std::string JoinCommand(const std::string& path, const std::vector<std::string>& arguments);

// Removes trailing newlines and spaces.
std::string TrimTrailingSpace(std::string text);

// Runs `path` with `arguments` (no shell), stdin on /dev/null, PATH set to
// the system directories and LC_ALL=C, and collects its output (at most
// 4 MiB of each stream). Fails when it cannot start or runs past `timeout`,
// in which case it is killed. A non-zero exit status is not a failure here.
Result<CommandOutput> RunCommand(const std::string& path, const std::vector<std::string>& arguments,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Runs the command and fails unless it exits with 0; the error names the
// command and its error output. Returns its standard output.
Result<std::string> RunChecked(const std::string& path, const std::vector<std::string>& arguments);

}  // namespace puddle::local
