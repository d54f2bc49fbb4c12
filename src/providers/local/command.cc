#include "providers/local/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "providers/local/unique_fd.h"

namespace puddle::local {
namespace {

// Output beyond this is dropped. `iptables -S OUTPUT` on a busy host stays far below it.
constexpr size_t kMaxOutputBytes = 4 << 20;

// Reads both descriptors until each reaches end of file. Returns false when
// `deadline` passes first or poll fails.
bool ReadUntilClosed(int out_fd, int err_fd, std::string& out, std::string& err,
                     std::chrono::steady_clock::time_point deadline) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open = 2;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    int ready = poll(fds, 2, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t count = read(fds[i].fd, buffer, sizeof buffer);
      if (count < 0 && errno == EINTR) continue;
      if (count <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      if (sinks[i]->size() < kMaxOutputBytes) sinks[i]->append(buffer, static_cast<size_t>(count));
    }
  }
  return true;
}

}  // namespace

std::string JoinCommand(const std::string& path, const std::vector<std::string>& arguments) {
  std::string text = path;
  for (const auto& argument : arguments) text += " " + argument;
  return text;
}

std::string TrimTrailingSpace(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

Result<CommandOutput> RunCommand(const std::string& path, const std::vector<std::string>& arguments,
                                 std::chrono::milliseconds timeout) {
  const std::string command = JoinCommand(path, arguments);

  // Everything the child uses is prepared before fork: Puddle is multi-threaded.
  std::vector<std::string> argv_storage = {path};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : argv_storage) argv.push_back(argument.data());
  argv.push_back(nullptr);
  char path_variable[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char locale_variable[] = "LC_ALL=C";
  char* envp[] = {path_variable, locale_variable, nullptr};

  UniqueFd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  int out_pipe[2];
  int err_pipe[2];
  if (!null_fd.Valid() || pipe2(out_pipe, O_CLOEXEC) != 0) {
    return InternalError("run " + command + ": " + std::strerror(errno));
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return InternalError("run " + command + ": " + std::strerror(errno));
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  pid_t pid = fork();
  if (pid < 0) return InternalError("run " + command + ": fork: " + std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls until execve.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (dup2(null_fd.Get(), 0) < 0 || dup2(out_write.Get(), 1) < 0 || dup2(err_write.Get(), 2) < 0) {
      _exit(127);
    }
    syscall(SYS_close_range, 3U, ~0U, 0U);
    execve(path.c_str(), argv.data(), envp);
    _exit(127);
  }
  out_write.Reset();
  err_write.Reset();

  CommandOutput output;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool finished = ReadUntilClosed(out_read.Get(), err_read.Get(), output.standard_output,
                                  output.standard_error, deadline);
  if (!finished) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!finished) {
    return InternalError("run " + command + ": timed out after " +
                         std::to_string(timeout.count()) + " ms and was killed");
  }
  if (WIFEXITED(status)) output.exit_status = WEXITSTATUS(status);
  return output;
}

Result<std::string> RunChecked(const std::string& path, const std::vector<std::string>& arguments) {
  auto output = RunCommand(path, arguments);
  if (!output) return tl::unexpected(output.error());
  if (output->exit_status != 0) {
    std::string reason = TrimTrailingSpace(output->standard_error);
    if (reason.empty()) reason = "no error output";
    return MakeError(ErrorCode::kUnavailable,
                     JoinCommand(path, arguments) + " failed with exit status " +
                         std::to_string(output->exit_status) + ": " + reason);
  }
  return output->standard_output;
}

}  // namespace puddle::local
