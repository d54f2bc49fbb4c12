#include "providers/local/process_table.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/time.h"

namespace puddle::local {
namespace {

// /proc/<pid>/environ and cmdline together are at most a few MiB; a process
// that put more there is read up to this many bytes.
constexpr size_t kMaxProcFileBytes = 4 << 20;

std::optional<std::string> ReadProcFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string content;
  char buffer[8192];
  while (content.size() < kMaxProcFileBytes) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return content;
}

std::string ProcPath(int64_t pid, std::string_view file) {
  return "/proc/" + std::to_string(pid) + "/" + std::string(file);
}

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::vector<std::string_view> SplitNul(std::string_view content) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start < content.size()) {
    size_t end = content.find('\0', start);
    if (end == std::string_view::npos) end = content.size();
    parts.push_back(content.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

}  // namespace

std::optional<int64_t> ReadBootTimeSeconds() {
  auto content = ReadProcFile("/proc/stat");
  if (!content) return std::nullopt;
  size_t at = content->find("\nbtime ");
  if (at == std::string::npos) return std::nullopt;
  size_t start = at + 7;
  size_t end = content->find('\n', start);
  return ParseInt(std::string_view(*content).substr(start, end - start));
}

std::optional<ProcessStat> ReadProcessStat(int64_t pid) {
  auto content = ReadProcFile(ProcPath(pid, "stat"));
  if (!content) return std::nullopt;

  // The command name in parentheses may itself contain spaces and ')', so the
  // fields are counted from the last ')'.
  size_t close_paren = content->rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  std::vector<std::string_view> fields;
  std::string_view rest = std::string_view(*content).substr(close_paren + 1);
  size_t start = 0;
  while (start < rest.size()) {
    size_t begin = rest.find_first_not_of(" \n", start);
    if (begin == std::string_view::npos) break;
    size_t end = rest.find_first_of(" \n", begin);
    if (end == std::string_view::npos) end = rest.size();
    fields.push_back(rest.substr(begin, end - begin));
    start = end;
  }
  // fields[0] is field 3 of the stat file (state); field 22 is starttime.
  if (fields.size() < 20 || fields[0].empty()) return std::nullopt;
  ProcessStat stat;
  stat.pid = pid;
  stat.state = fields[0][0];
  auto ppid = ParseInt(fields[1]);
  auto pgid = ParseInt(fields[2]);
  auto sid = ParseInt(fields[3]);
  auto start_ticks = ParseInt(fields[19]);
  if (!ppid || !pgid || !sid || !start_ticks) return std::nullopt;
  stat.ppid = *ppid;
  stat.pgid = *pgid;
  stat.sid = *sid;
  stat.start_ticks = *start_ticks;
  return stat;
}

std::optional<uid_t> ReadProcessUid(int64_t pid) {
  auto content = ReadProcFile(ProcPath(pid, "status"));
  if (!content) return std::nullopt;
  size_t at = content->find("\nUid:");
  if (at == std::string::npos) return std::nullopt;
  size_t begin = content->find_first_not_of(" \t", at + 5);
  if (begin == std::string::npos) return std::nullopt;
  size_t end = content->find_first_of(" \t\n", begin);
  auto uid = ParseInt(std::string_view(*content).substr(begin, end - begin));
  if (!uid || *uid < 0) return std::nullopt;
  return static_cast<uid_t>(*uid);
}

std::optional<std::string> ReadProcessEnvironmentValue(int64_t pid, std::string_view name) {
  auto content = ReadProcFile(ProcPath(pid, "environ"));
  if (!content) return std::nullopt;
  for (std::string_view entry : SplitNul(*content)) {
    if (entry.size() > name.size() && entry.substr(0, name.size()) == name &&
        entry[name.size()] == '=') {
      return std::string(entry.substr(name.size() + 1));
    }
  }
  return std::nullopt;
}

std::vector<std::string> ReadProcessArguments(int64_t pid) {
  std::vector<std::string> arguments;
  auto content = ReadProcFile(ProcPath(pid, "cmdline"));
  if (!content) return arguments;
  for (std::string_view part : SplitNul(*content)) arguments.emplace_back(part);
  return arguments;
}

std::vector<int64_t> ListProcessIds() {
  std::vector<int64_t> pids;
  std::unique_ptr<DIR, int (*)(DIR*)> directory(opendir("/proc"), closedir);
  if (!directory) return pids;
  while (dirent* entry = readdir(directory.get())) {
    if (auto pid = ParseInt(entry->d_name); pid && *pid > 0) pids.push_back(*pid);
  }
  return pids;
}

bool IsProcessAlive(int64_t pid, int64_t start_ticks) {
  if (pid <= 0) return false;
  auto stat = ReadProcessStat(pid);
  return stat && stat->start_ticks == start_ticks && stat->state != 'Z' && stat->state != 'X';
}

Result<std::string> ReadBootId(const std::string& path) {
  auto content = ReadProcFile(path);
  if (!content) {
    return InternalError("read boot id from " + path + ": " + std::strerror(errno));
  }
  std::string boot_id = *content;
  while (!boot_id.empty() && (boot_id.back() == '\n' || boot_id.back() == ' ')) boot_id.pop_back();
  if (boot_id.empty()) return InternalError("read boot id from " + path + ": file is empty");
  return boot_id;
}

std::string FormatProcessStartTime(int64_t start_ticks) {
  auto boot_time = ReadBootTimeSeconds();
  long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (!boot_time || ticks_per_second <= 0) return {};
  int64_t millis = *boot_time * 1000 + start_ticks * 1000 / ticks_per_second;
  return FormatTime(FromUnixMillis(millis));
}

bool SignalProcess(int64_t pid, int64_t start_ticks, int signal) {
  if (pid <= 0) return false;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (pidfd < 0) return false;
  bool sent = false;
  // The pidfd pins the process that had `pid` when it was opened; if /proc
  // still shows the expected start time now, the pidfd refers to that process.
  auto stat = ReadProcessStat(pid);
  if (stat && stat->start_ticks == start_ticks) {
    sent = syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) == 0;
  }
  close(pidfd);
  return sent;
}

}  // namespace puddle::local
