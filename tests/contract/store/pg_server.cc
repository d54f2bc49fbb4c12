#include "pg_server.h"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace puddle::testing {

namespace {

// Runs `command` with /bin/sh and returns its KEY=VALUE output lines. The
// command's stderr goes to the test's stderr.
Result<std::map<std::string, std::string>> RunScript(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return InternalError("popen failed for: " + command);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  int status = pclose(pipe);
  if (status != 0) {
    return InternalError("command failed with status " + std::to_string(status) + ": " + command);
  }

  std::map<std::string, std::string> values;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    auto equals = line.find('=');
    if (equals != std::string::npos) values[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return values;
}

// Returns a TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// True while `pid` runs; a zombie (exited, not yet reaped by init) counts as gone.
bool IsRunning(int pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() || text[paren + 2] != 'Z';
}

bool WaitForExit(int pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (IsRunning(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string Quote(const std::string& text) { return "'" + text + "'"; }

}  // namespace

bool PgServer::BinariesPresent() {
  for (const char* name : {"initdb", "pg_ctl", "postgres", "psql"}) {
    if (access((std::string(kBinDir) + "/" + name).c_str(), X_OK) != 0) return false;
  }
  return true;
}

Result<std::unique_ptr<PgServer>> PgServer::Start() {
  Error last_error;
  // Another process may take the port between FreeLoopbackPort and the
  // server's bind, so a failed start is retried on another port.
  for (int attempt = 0; attempt < 3; ++attempt) {
    int port = FreeLoopbackPort();
    if (port == 0) return InternalError("no free TCP port on 127.0.0.1");
    auto values = RunScript(Quote(PUDDLE_PG_THROWAWAY_SCRIPT) + " start " + std::to_string(port) +
                            " " + std::to_string(getpid()));
    if (!values) {
      last_error = values.error();
      continue;
    }
    std::unique_ptr<PgServer> server(new PgServer());
    server->port_ = port;
    server->password_ = (*values)["PG_PASSWORD"];
    server->dir_ = (*values)["PG_DIR"];
    server->server_pid_ = std::atoi((*values)["PG_PID"].c_str());
    server->watchdog_pid_ = std::atoi((*values)["PG_WATCHDOG_PID"].c_str());
    if (server->dir_.empty() || server->server_pid_ <= 0) {
      return InternalError("pg_throwaway.sh printed no PG_DIR or PG_PID");
    }
    return server;
  }
  return tl::unexpected(last_error);
}

PgServer::~PgServer() { Stop(); }

void PgServer::Stop() {
  // SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL if it does not exit.
  if (IsRunning(server_pid_)) {
    kill(server_pid_, SIGQUIT);
    if (!WaitForExit(server_pid_, std::chrono::seconds(10))) kill(server_pid_, SIGKILL);
  }
  // The watchdog runs in its own session; its pid is the process group id.
  if (watchdog_pid_ > 0) kill(-watchdog_pid_, SIGKILL);
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  server_pid_ = 0;
  watchdog_pid_ = 0;
}

Status PgServer::Restart() {
  auto values = RunScript(Quote(PUDDLE_PG_THROWAWAY_SCRIPT) + " restart " + Quote(dir_));
  if (!values) return tl::unexpected(values.error());
  int pid = std::atoi((*values)["PG_PID"].c_str());
  if (pid <= 0) return InternalError("pg_throwaway.sh restart printed no PG_PID");
  server_pid_ = pid;
  return Ok();
}

Status PgServer::CreateDatabase(const std::string& name) {
  std::string port = std::to_string(port_);
  const char* keywords[] = {"host", "port", "user", "dbname", "password", "sslmode", nullptr};
  const char* values[] = {"127.0.0.1",       port.c_str(), "postgres", "postgres",
                          password_.c_str(), "disable",    nullptr};
  PGconn* connection = PQconnectdbParams(keywords, values, 0);
  if (PQstatus(connection) != CONNECTION_OK) {
    std::string message = PQerrorMessage(connection);
    PQfinish(connection);
    return MakeError(ErrorCode::kUnavailable, "connect for CREATE DATABASE failed: " + message);
  }
  PGresult* result = PQexec(connection, ("CREATE DATABASE \"" + name + "\"").c_str());
  bool created = PQresultStatus(result) == PGRES_COMMAND_OK;
  std::string message = PQresultErrorMessage(result);
  PQclear(result);
  PQfinish(connection);
  if (!created) return InternalError("CREATE DATABASE " + name + " failed: " + message);
  return Ok();
}

sql::PostgresOptions PgServer::Options(const std::string& dbname) const {
  sql::PostgresOptions options;
  options.host = "127.0.0.1";
  options.port = port_;
  options.user = "postgres";
  options.dbname = dbname;
  options.password = password_;
  options.sslmode = "disable";
  options.pool_size = 8;
  options.connect_timeout_seconds = 5;
  options.acquire_timeout_seconds = 30;
  return options;
}

}  // namespace puddle::testing
