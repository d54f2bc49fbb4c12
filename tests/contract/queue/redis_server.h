// RedisServer: a throwaway redis-server on 127.0.0.1 for tests.
//
// Each server gets a free port, a Unix socket and a temporary directory, and
// keeps nothing on disk (--save '' --appendonly no). It runs as a child of the
// test process and is stopped by its pid in the destructor, also when the test
// failed. The kernel kills it (PR_SET_PDEATHSIG) if the thread that started it
// ends first, so a crashed test leaves nothing running. Start and restart
// servers from the test's main thread. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace puddle::testing {

class RedisServer {
 public:
  // Path of redis-server found on PATH, or "" when it is not installed.
  static std::string FindBinary();

  // Starts a server that requires `password` when it is not empty, trying up
  // to three ports.
  static Result<std::unique_ptr<RedisServer>> Start(const std::string& password = "");

  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Kills the server with SIGKILL, as a crash would, and waits for it to exit.
  void Kill();
  // Starts a new server on the same port and socket. It starts empty, as a
  // restarted Redis without persistence does.
  Status StartAgain();

  // Runs one command on a new connection. Returns the reply as text: strings
  // as they are, integers in decimal, nil as "(nil)", arrays flattened and
  // joined with spaces. An error reply is returned as an Error.
  Result<std::string> Command(const std::vector<std::string>& args) const;
  // Number of clients blocked in a command such as XREADGROUP ... BLOCK.
  Result<int> BlockedClients() const;

  int port() const { return port_; }
  // "127.0.0.1:<port>".
  std::string address() const;
  std::string socket_path() const { return dir_ + "/redis.sock"; }

 private:
  RedisServer() = default;
  Status Launch();
  void Stop();

  std::string binary_;
  std::string password_;
  std::string dir_;
  int port_ = 0;
  int pid_ = 0;
};

}  // namespace puddle::testing
