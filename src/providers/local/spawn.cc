#include "providers/local/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string_view>

#include "providers/local/supervisor_protocol.h"
#include "providers/local/unique_fd.h"

namespace puddle::local {
namespace {

// Everything the child needs, as plain pointers into memory prepared before
// fork, so the child never allocates.
struct ChildPlan {
  int channel_fd = -1;
  int executable_fd = -1;
  int null_fd = -1;
  uid_t uid = 0;
  gid_t gid = 0;
  const char* const* cgroup_procs_files = nullptr;
  size_t cgroup_count = 0;
  bool set_process_limit = false;
  rlim_t process_limit = 0;
  int network_namespace_fd = -1;
  const char* const* tmpfs_paths = nullptr;
  size_t tmpfs_count = 0;
  const char* tmpfs_options = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

// Descriptor the child reports its failures on; set before each step.
int g_report_fd = -1;

// Async-signal-safe: formats `value` in decimal into `buffer`, returns length.
size_t FormatDecimal(long value, char* buffer) {
  char digits[24];
  size_t count = 0;
  bool negative = value < 0;
  unsigned long magnitude = negative ? -static_cast<unsigned long>(value) : value;
  do {
    digits[count++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0);
  size_t length = 0;
  if (negative) buffer[length++] = '-';
  while (count > 0) buffer[length++] = digits[--count];
  return length;
}

void WriteAll(int fd, const char* data, size_t length) {
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    length -= static_cast<size_t>(n);
  }
}

// Async-signal-safe: reports "spawn-error <step> <errno>" and ends the child.
[[noreturn]] void FailChild(const char* step, int error) {
  char line[128];
  size_t length = 0;
  const char prefix[] = "spawn-error ";
  for (const char* p = prefix; *p != '\0'; ++p) line[length++] = *p;
  for (const char* p = step; *p != '\0' && length < 100; ++p) line[length++] = *p;
  line[length++] = ' ';
  length += FormatDecimal(error, line + length);
  line[length++] = '\n';
  WriteAll(g_report_fd, line, length);
  _exit(127);
}

void ResetSignals() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  // glibc refuses its two internal signals with EINVAL, which is harmless.
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) sigaction(signal, &action, nullptr);
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);
}

void JoinCgroups(const ChildPlan& plan) {
  char pid_text[24];
  size_t length = FormatDecimal(getpid(), pid_text);
  for (size_t i = 0; i < plan.cgroup_count; ++i) {
    int fd = open(plan.cgroup_procs_files[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) FailChild("join-cgroup", errno);
    if (write(fd, pid_text, length) != static_cast<ssize_t>(length)) FailChild("join-cgroup", errno);
    close(fd);
  }
}

// Joins the system's network namespace and gives it private tmpfs
// directories. Both need root, so they come before the privilege drop.
void IsolateChild(const ChildPlan& plan) {
  if (plan.network_namespace_fd >= 0 && setns(plan.network_namespace_fd, CLONE_NEWNET) != 0) {
    FailChild("setns-network", errno);
  }
  if (plan.tmpfs_count == 0) return;
  if (unshare(CLONE_NEWNS) != 0) FailChild("unshare-mount-namespace", errno);
  // Slave propagation: mounts made here never reach the host's namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    FailChild("make-mounts-slave", errno);
  }
  for (size_t i = 0; i < plan.tmpfs_count; ++i) {
    if (mount("tmpfs", plan.tmpfs_paths[i], "tmpfs", MS_NOSUID | MS_NODEV, plan.tmpfs_options) !=
        0) {
      FailChild("mount-tmpfs", errno);
    }
  }
}

// Moves the channel to 3 and the executable to 4 (close-on-exec), /dev/null
// to 0-2, and closes everything else. Copies go above 9 first so that no
// dup2 overwrites a source that is still needed.
void ArrangeDescriptors(const ChildPlan& plan) {
  int channel = fcntl(plan.channel_fd, F_DUPFD, 10);
  int executable = fcntl(plan.executable_fd, F_DUPFD, 10);
  int null = fcntl(plan.null_fd, F_DUPFD, 10);
  if (channel < 0 || executable < 0 || null < 0) FailChild("arrange-descriptors", errno);
  g_report_fd = channel;
  if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) {
    FailChild("arrange-descriptors", errno);
  }
  if (dup2(channel, kSupervisorChannelFd) < 0) FailChild("arrange-descriptors", errno);
  g_report_fd = kSupervisorChannelFd;
  if (dup2(executable, 4) < 0 || fcntl(4, F_SETFD, FD_CLOEXEC) < 0) {
    FailChild("arrange-descriptors", errno);
  }
  if (close_range(5, ~0U, 0) != 0) FailChild("close-descriptors", errno);
}

void DropPrivileges(const ChildPlan& plan) {
  if (setgroups(0, nullptr) != 0) FailChild("setgroups", errno);
  if (setresgid(plan.gid, plan.gid, plan.gid) != 0) FailChild("setgid", errno);
  if (setresuid(plan.uid, plan.uid, plan.uid) != 0) FailChild("setuid", errno);

  // Checks the drop instead of trusting the return codes: every id must be
  // the target, no supplementary group may remain, and root must be out of
  // reach.
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 || ruid != plan.uid || euid != plan.uid ||
      suid != plan.uid) {
    FailChild("verify-uid", EPERM);
  }
  if (getresgid(&rgid, &egid, &sgid) != 0 || rgid != plan.gid || egid != plan.gid ||
      sgid != plan.gid) {
    FailChild("verify-gid", EPERM);
  }
  if (getgroups(0, nullptr) != 0) FailChild("verify-groups", EPERM);
  if (setuid(0) == 0 || setgid(0) == 0) FailChild("verify-root-unreachable", EPERM);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) FailChild("no-new-privs", errno);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  g_report_fd = plan.channel_fd;
  ResetSignals();
  if (setsid() < 0) FailChild("setsid", errno);
  JoinCgroups(plan);
  if (plan.set_process_limit) {
    struct rlimit limit = {plan.process_limit, plan.process_limit};
    if (setrlimit(RLIMIT_NPROC, &limit) != 0) FailChild("setrlimit-nproc", errno);
  }
  IsolateChild(plan);
  ArrangeDescriptors(plan);
  DropPrivileges(plan);
  execveat(4, "", plan.argv, plan.envp, AT_EMPTY_PATH);
  FailChild("exec-supervisor", errno);
}

std::vector<char*> PointerArray(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (const auto& text : strings) pointers.push_back(const_cast<char*>(text.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

int RemainingMillis(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Sends the spec; a supervisor that failed before reading it closes the
// socket, which is reported through its reply rather than here.
void SendSpec(int fd, std::string_view spec, std::chrono::steady_clock::time_point deadline) {
  size_t done = 0;
  while (done < spec.size()) {
    pollfd entry = {fd, POLLOUT, 0};
    if (poll(&entry, 1, RemainingMillis(deadline)) <= 0) break;
    ssize_t n = send(fd, spec.data() + done, spec.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
}

Result<std::string> ReceiveReply(int fd, std::chrono::steady_clock::time_point deadline,
                                 std::chrono::milliseconds timeout) {
  std::string reply;
  char buffer[1024];
  while (reply.size() < 64 * 1024) {
    pollfd entry = {fd, POLLIN, 0};
    int ready = poll(&entry, 1, RemainingMillis(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      return InternalError("the supervisor did not reply within " +
                           std::to_string(timeout.count() / 1000) + " s");
    }
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buffer, static_cast<size_t>(n));
    // The reply is one line; what follows it, or the end of the stream, is
    // not waited for.
    if (reply.find('\n') != std::string::npos) break;
  }
  return reply;
}

Result<SpawnedSupervisor> ParseReply(const std::string& reply) {
  std::string line = reply.substr(0, reply.find('\n'));
  if (line.rfind("ok ", 0) == 0) {
    SpawnedSupervisor spawned;
    if (std::sscanf(line.c_str(), "ok %ld %ld", &spawned.supervisor_pid, &spawned.product_pid) ==
            2 &&
        spawned.supervisor_pid > 0 && spawned.product_pid > 0) {
      return spawned;
    }
  }
  if (line.rfind("spawn-error ", 0) == 0) {
    char step[101] = {};
    int error = 0;
    if (std::sscanf(line.c_str(), "spawn-error %100s %d", step, &error) == 2) {
      return InternalError(std::string("start supervisor: ") + step + " failed: " +
                           std::strerror(error));
    }
  }
  if (line.rfind("error ", 0) == 0) return InternalError(line.substr(6));
  if (line.empty()) return InternalError("the supervisor exited without a reply");
  return InternalError("the supervisor sent an invalid reply");
}

}  // namespace

Result<SpawnedSupervisor> SpawnSupervisor(const SpawnRequest& request) {
  if (request.uid == 0 || request.gid == 0) {
    return InternalError("refusing to start a supervisor as root");
  }

  // The uid execs the binary through a descriptor root opened, so only the
  // execute bit for others matters.
  UniqueFd executable(open(request.executable.c_str(), O_RDONLY | O_CLOEXEC));
  if (!executable.Valid()) {
    return InternalError("open supervisor executable " + request.executable + ": " +
                         std::strerror(errno));
  }
  struct stat info;
  if (fstat(executable.Get(), &info) != 0 || !S_ISREG(info.st_mode) ||
      (info.st_mode & S_IXOTH) == 0) {
    return InternalError("supervisor executable " + request.executable +
                         " must be a regular file that other users may execute (chmod o+x)");
  }
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null.Valid()) return InternalError(std::string("open /dev/null: ") + std::strerror(errno));
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return InternalError(std::string("create supervisor channel: ") + std::strerror(errno));
  }
  UniqueFd parent_end(pair[0]);
  UniqueFd child_end(pair[1]);

  UniqueFd network_namespace;
  if (!request.network_namespace_path.empty()) {
    network_namespace.Reset(open(request.network_namespace_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!network_namespace.Valid()) {
      return InternalError("open network namespace " + request.network_namespace_path + ": " +
                           std::strerror(errno));
    }
  }
  std::vector<const char*> tmpfs_paths;
  for (const auto& path : request.private_tmpfs_paths) tmpfs_paths.push_back(path.c_str());

  std::vector<char*> argv = PointerArray(request.argv);
  std::vector<char*> envp = PointerArray(request.environment);
  std::vector<const char*> cgroup_files;
  for (const auto& path : request.cgroup_procs_files) cgroup_files.push_back(path.c_str());
  ChildPlan plan;
  plan.channel_fd = child_end.Get();
  plan.executable_fd = executable.Get();
  plan.null_fd = null.Get();
  plan.uid = request.uid;
  plan.gid = request.gid;
  plan.cgroup_procs_files = cgroup_files.data();
  plan.cgroup_count = cgroup_files.size();
  plan.set_process_limit = request.process_limit.has_value();
  plan.process_limit = request.process_limit.value_or(0);
  plan.network_namespace_fd = network_namespace.Get();
  plan.tmpfs_paths = tmpfs_paths.data();
  plan.tmpfs_count = tmpfs_paths.size();
  plan.tmpfs_options = request.tmpfs_options.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();

  // The intermediate child only forks again and exits, which reparents the
  // supervisor to init. _Fork skips atfork handlers, so it is safe here.
  pid_t intermediate = fork();
  if (intermediate < 0) return InternalError(std::string("fork: ") + std::strerror(errno));
  if (intermediate == 0) {
    pid_t supervisor = _Fork();
    if (supervisor == 0) RunChild(plan);
    _exit(supervisor < 0 ? 1 : 0);
  }
  child_end.Reset();
  int wait_status = 0;
  while (waitpid(intermediate, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) != 0) {
    return InternalError("fork the supervisor: the intermediate process failed");
  }

  auto deadline = std::chrono::steady_clock::now() + request.timeout;
  SendSpec(parent_end.Get(), request.spec, deadline);
  auto reply = ReceiveReply(parent_end.Get(), deadline, request.timeout);
  if (!reply) return tl::unexpected(reply.error());
  return ParseReply(*reply);
}

}  // namespace puddle::local
