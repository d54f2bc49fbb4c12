#include "redis_server.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace puddle::testing {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Returns a TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// Waits up to `timeout` for child `pid` to exit and reaps it. Returns false
// when it still runs.
bool WaitForExit(int pid, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    int reaped = waitpid(pid, &status, WNOHANG);
    if (reaped == pid || (reaped < 0 && errno == ECHILD)) return true;
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void AppendReply(const redisReply* reply, std::string& text) {
  if (reply->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < reply->elements; ++i) AppendReply(reply->element[i], text);
    return;
  }
  if (!text.empty()) text += ' ';
  if (reply->type == REDIS_REPLY_INTEGER) {
    text += std::to_string(reply->integer);
  } else if (reply->type == REDIS_REPLY_NIL) {
    text += "(nil)";
  } else if (reply->str != nullptr) {
    text.append(reply->str, reply->len);
  }
}

}  // namespace

std::string RedisServer::FindBinary() {
  const char* path = getenv("PATH");
  std::stringstream directories(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string directory; std::getline(directories, directory, ':');) {
    std::string candidate = directory + "/redis-server";
    if (!directory.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

Result<std::unique_ptr<RedisServer>> RedisServer::Start(const std::string& password) {
  std::string binary = FindBinary();
  if (binary.empty()) return InternalError("redis-server is not installed");

  Error last_error;
  // Another process may take the port between FreeLoopbackPort and the
  // server's bind, so a failed start is retried on another port.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::unique_ptr<RedisServer> server(new RedisServer());
    server->binary_ = binary;
    server->password_ = password;
    server->port_ = FreeLoopbackPort();
    if (server->port_ == 0) return InternalError("no free TCP port on 127.0.0.1");
    std::string pattern = (std::filesystem::temp_directory_path() / "puddle-redis-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return InternalError("mkdtemp " + pattern + " failed");
    server->dir_ = pattern;

    auto launched = server->Launch();
    if (launched) return server;
    last_error = launched.error();
  }
  return tl::unexpected(last_error);
}

Status RedisServer::Launch() {
  std::vector<std::string> args = {binary_,
                                   "--bind", "127.0.0.1",
                                   "--port", std::to_string(port_),
                                   "--unixsocket", socket_path(),
                                   "--unixsocketperm", "700",
                                   "--dir", dir_,
                                   "--save", "",
                                   "--appendonly", "no",
                                   "--daemonize", "no",
                                   "--logfile", dir_ + "/redis.log"};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return InternalError("fork for redis-server failed");
  if (pid == 0) {
    // The kernel kills the server when the thread that forked it ends.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    // Copies of the test's sockets in the server would keep them open after
    // the test closes them.
    close_range(3, ~0U, 0);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;

  // Ready once PING gets any reply; NOAUTH also means the server listens.
  auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return InternalError("redis-server exited during start-up on port " + std::to_string(port_) +
                           "; its log:\n" + ReadFile(dir_ + "/redis.log"));
    }
    timeval timeout{1, 0};
    redisContext* context = redisConnectWithTimeout("127.0.0.1", port_, timeout);
    bool ready = false;
    if (context != nullptr && context->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
      ready = reply != nullptr;
      if (reply != nullptr) freeReplyObject(reply);
    }
    if (context != nullptr) redisFree(context);
    if (ready) return Ok();
    std::this_thread::sleep_for(milliseconds(20));
  }
  Stop();
  return InternalError("redis-server on port " + std::to_string(port_) +
                       " did not answer PING within 10 s");
}

RedisServer::~RedisServer() {
  Stop();
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!WaitForExit(pid_, std::chrono::seconds(5))) {
    kill(pid_, SIGKILL);
    WaitForExit(pid_, std::chrono::seconds(5));
  }
  pid_ = 0;
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitForExit(pid_, std::chrono::seconds(5));
  pid_ = 0;
}

Status RedisServer::StartAgain() {
  Stop();
  std::error_code ignored;
  std::filesystem::remove(socket_path(), ignored);
  return Launch();
}

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

Result<std::string> RedisServer::Command(const std::vector<std::string>& args) const {
  timeval timeout{5, 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port_, timeout);
  if (context == nullptr || context->err != 0) {
    std::string error = context != nullptr ? context->errstr : "out of memory";
    if (context != nullptr) redisFree(context);
    return InternalError("connecting to test Redis on port " + std::to_string(port_) +
                         " failed: " + error);
  }
  redisSetTimeout(context, timeout);

  auto run = [&](const std::vector<std::string>& command) -> Result<std::string> {
    std::vector<const char*> values;
    std::vector<size_t> lengths;
    for (const auto& arg : command) {
      values.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(redisCommandArgv(
        context, static_cast<int>(values.size()), values.data(), lengths.data()));
    if (reply == nullptr) return InternalError(std::string("test Redis: ") + context->errstr);
    std::string text;
    bool failed = reply->type == REDIS_REPLY_ERROR;
    if (failed) {
      text.assign(reply->str, reply->len);
    } else {
      AppendReply(reply, text);
    }
    freeReplyObject(reply);
    if (failed) return InternalError(text);
    return text;
  };

  Result<std::string> result = std::string();
  if (!password_.empty()) result = run({"AUTH", password_});
  if (result) result = run(args);
  redisFree(context);
  return result;
}

Result<int> RedisServer::BlockedClients() const {
  PUDDLE_ASSIGN_OR_RETURN(std::string info, Command({"INFO", "clients"}));
  auto at = info.find("blocked_clients:");
  if (at == std::string::npos) return InternalError("INFO clients has no blocked_clients");
  return std::atoi(info.c_str() + at + sizeof("blocked_clients:") - 1);
}

}  // namespace puddle::testing
