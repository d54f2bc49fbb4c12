#include "providers/local/supervisor.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "providers/local/process_table.h"
#include "providers/local/supervisor_protocol.h"
#include "providers/local/system_files.h"

namespace puddle::local {
namespace {

// A log that grew past this is moved to product.log.1 when the product starts.
constexpr off_t kMaxLogBytesAtStart = 16 << 20;

// How long descendants left behind by the product get between SIGTERM and
// SIGKILL, and how long the supervisor keeps killing before it gives up.
constexpr auto kDescendantGrace = std::chrono::seconds(3);
constexpr auto kDescendantGiveUp = std::chrono::seconds(15);

constexpr size_t kMaxSpecBytes = 1 << 20;

std::atomic<int> g_stop_signal{0};

void RecordStopSignal(int signal) { g_stop_signal = signal; }

void Reply(const std::string& line) {
  std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(kSupervisorChannelFd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Writes a line of the supervisor's own to the product log (its stderr).
void LogLine(const std::string& message) {
  std::string text = "puddle-supervisor: " + message + "\n";
  (void)!write(STDERR_FILENO, text.data(), text.size());
}

int Fail(const std::string& message) {
  Reply("error " + message);
  LogLine(message);
  return 1;
}

Result<std::string> ReadSpecText() {
  std::string text;
  char buffer[8192];
  while (text.size() <= kMaxSpecBytes) {
    ssize_t n = read(kSupervisorChannelFd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InternalError(std::string("read the launch spec: ") + std::strerror(errno));
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
  }
  return InternalError("the launch spec is larger than 1 MiB");
}

// Opens the product log and makes it the supervisor's stdout and stderr.
Status RedirectOutputToLog(const SupervisorSpec& spec) {
  std::string path = spec.system_dir + "/" + std::string(kLogFileName);
  struct stat info;
  if (lstat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
      info.st_size > kMaxLogBytesAtStart) {
    rename(path.c_str(), (path + ".1").c_str());
  }
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                0600);
  if (fd < 0) return InternalError("open " + path + ": " + std::strerror(errno));
  if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
    int error = errno;
    close(fd);
    return InternalError("redirect output to " + path + ": " + std::strerror(error));
  }
  close(fd);
  return Ok();
}

std::string EnvironmentValue(const std::vector<std::string>& environment, std::string_view name) {
  for (const auto& entry : environment) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
  }
  return {};
}

// Resolves a command name the way a shell would, with the product's PATH.
Result<std::string> FindExecutable(const std::string& command, const std::string& path) {
  if (command.find('/') != std::string::npos) {
    if (access(command.c_str(), X_OK) != 0) {
      return InternalError("product command " + command + " cannot be executed: " +
                           std::strerror(errno));
    }
    return command;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string directory = path.substr(start, end - start);
    if (directory.empty()) directory = ".";
    std::string candidate = directory + "/" + command;
    struct stat info;
    if (stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return InternalError("product command " + command + " not found in PATH=" + path);
}

// The kernel's count of OOM kills in the memory cgroup ("oom_kill N" in
// memory.oom_control, Linux 4.13 and later), or -1 when unknown.
int64_t ReadOomKillCount(const std::string& memory_cgroup) {
  if (memory_cgroup.empty()) return -1;
  std::ifstream control(memory_cgroup + "/memory.oom_control");
  std::string name;
  int64_t value = 0;
  while (control >> name >> value) {
    if (name == "oom_kill") return value;
  }
  return -1;
}

void InstallStopHandlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = RecordStopSignal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaction(signal, &action, nullptr);
}

std::vector<char*> PointerArray(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (const auto& text : strings) pointers.push_back(const_cast<char*>(text.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// Forks and execs the product. Returns its pid once exec succeeded.
Result<pid_t> StartProduct(const SupervisorSpec& spec, const std::string& executable) {
  int exec_error_pipe[2];
  if (pipe2(exec_error_pipe, O_CLOEXEC) != 0) {
    return InternalError(std::string("create pipe: ") + std::strerror(errno));
  }
  std::vector<char*> argv = PointerArray(spec.argv);
  std::vector<char*> envp = PointerArray(spec.environment);

  pid_t pid = fork();
  if (pid < 0) return InternalError(std::string("fork the product: ") + std::strerror(errno));
  if (pid == 0) {
    // Handlers reset to default at exec; the mask must be cleared by hand.
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    int error = 0;
    if (chdir(spec.home_dir.c_str()) != 0) error = errno;
    // Everything above stderr, the error pipe included, closes at exec.
    if (error == 0 && close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) error = errno;
    if (error == 0) {
      execve(executable.c_str(), argv.data(), envp.data());
      error = errno;
    }
    (void)!write(exec_error_pipe[1], &error, sizeof(error));
    _exit(127);
  }

  close(exec_error_pipe[1]);
  int error = 0;
  ssize_t n;
  do {
    n = read(exec_error_pipe[0], &error, sizeof(error));
  } while (n < 0 && errno == EINTR);
  close(exec_error_pipe[0]);
  if (n == sizeof(error)) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return InternalError("start product " + executable + " in " + spec.home_dir + ": " +
                         std::strerror(error));
  }
  return pid;
}

int WaitForProduct(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 0;
  }
  return status;
}

std::vector<int64_t> ListChildren() {
  std::vector<int64_t> children;
  int64_t self = getpid();
  for (int64_t pid : ListProcessIds()) {
    auto stat = ReadProcessStat(pid);
    if (stat && stat->ppid == self && stat->state != 'Z') children.push_back(pid);
  }
  return children;
}

// Ends whatever the product left behind. As a subreaper the supervisor
// inherits every orphaned descendant, so "no child left" means none is left.
void EndDescendants() {
  auto start = std::chrono::steady_clock::now();
  bool terminated = false;
  while (std::chrono::steady_clock::now() - start < kDescendantGiveUp) {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD) return;

    bool grace_over = std::chrono::steady_clock::now() - start >= kDescendantGrace;
    if (!terminated || grace_over) {
      for (int64_t child : ListChildren()) kill(static_cast<pid_t>(child), grace_over ? SIGKILL : SIGTERM);
      terminated = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  LogLine("some processes of the product did not end; giving up on them");
}

void WriteExitRecord(const SupervisorSpec& spec, const ExitRecord& record) {
  std::string path = spec.system_dir + "/" + std::string(kExitRecordFileName);
  if (auto status = WriteFileAtomically(path, SerializeExitRecord(record), 0600); !status) {
    LogLine("could not record the exit status: " + status.error().message);
  }
}

}  // namespace

int RunSupervisor(int argc, char** argv) {
  if (getuid() == 0 || geteuid() == 0) {
    Reply("error the supervisor refuses to run as root");
    return 2;
  }
  if (argc < 2 || std::string_view(argv[1]) != kSupervisorSubcommand) {
    Reply("error usage: puddle supervise --system-id=<id> with the launch spec on descriptor 3");
    return 2;
  }

  auto text = ReadSpecText();
  if (!text) return Fail(text.error().message);
  auto spec = ParseSupervisorSpec(*text);
  if (!spec) return Fail(spec.error().message);
  text->clear();

  // Descendants orphaned by the product (kernels started in their own
  // session, daemons) are re-parented to this process instead of init.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (auto status = RedirectOutputToLog(*spec); !status) return Fail(status.error().message);
  unlink((spec->system_dir + "/" + std::string(kExitRecordFileName)).c_str());

  std::string path = EnvironmentValue(spec->environment, "PATH");
  auto executable = FindExecutable(spec->argv[0], path.empty() ? "/usr/bin:/bin" : path);
  if (!executable) return Fail(executable.error().message);

  int64_t oom_kills_before = ReadOomKillCount(spec->memory_cgroup);
  InstallStopHandlers();
  auto pid = StartProduct(*spec, *executable);
  if (!pid) return Fail(pid.error().message);
  int64_t start_ticks = 0;
  if (auto stat = ReadProcessStat(*pid)) start_ticks = stat->start_ticks;
  Reply("ok " + std::to_string(getpid()) + " " + std::to_string(*pid));
  close(kSupervisorChannelFd);

  // Waits for the product, then records how it ended before anything else.
  int wait_status = WaitForProduct(*pid);
  ExitRecord record = ExitRecordFromWaitStatus(*pid, start_ticks, wait_status);
  int64_t oom_kills_after = ReadOomKillCount(spec->memory_cgroup);
  record.out_of_memory = record.signal == SIGKILL && oom_kills_before >= 0 &&
                         oom_kills_after > oom_kills_before;
  WriteExitRecord(*spec, record);
  LogLine("product exited: " + record.Description());

  EndDescendants();
  return 0;
}

}  // namespace puddle::local
