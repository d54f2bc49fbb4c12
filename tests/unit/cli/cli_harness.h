// Test doubles for the client commands: a scripted server behind the
// HttpTransport interface, a scripted terminal, and a harness that runs
// `puddle ...` command lines in-process with its own environment and streams.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/client_commands.h"
#include "cli/client_environment.h"
#include "common/clock.h"

namespace puddle::cli::testing {

// A directory under /tmp removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "puddle-cli-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Records every call and answers it with `handler`.
struct FakeServer {
  struct Connection {
    std::string base_url;
    TlsPolicy tls;
  };

  std::function<Result<HttpReply>(const HttpCall&)> handler;
  std::vector<HttpCall> calls;
  std::vector<Connection> connections;
  std::string fingerprint = "AA:BB";

  // Returns the calls whose method and target start as given.
  std::vector<HttpCall> CallsTo(const std::string& method, const std::string& prefix) const {
    std::vector<HttpCall> matching;
    for (const auto& call : calls) {
      if (call.method == method && call.target.rfind(prefix, 0) == 0) matching.push_back(call);
    }
    return matching;
  }
};

class FakeTransport final : public HttpTransport {
 public:
  explicit FakeTransport(std::shared_ptr<FakeServer> server) : server_(std::move(server)) {}
  Result<HttpReply> Send(const HttpCall& call) override {
    server_->calls.push_back(call);
    auto reply = server_->handler(call);
    if (reply) reply->peer_fingerprint = server_->fingerprint;
    return reply;
  }

 private:
  std::shared_ptr<FakeServer> server_;
};

class FakeTerminal final : public Terminal {
 public:
  bool interactive = false;
  std::deque<std::string> answers;
  std::vector<std::string> prompts;

  bool IsInteractive() const override { return interactive; }
  std::optional<std::string> Prompt(std::string_view prompt, bool echo) override {
    prompts.emplace_back(prompt);
    if (answers.empty()) return std::nullopt;
    std::string answer = answers.front();
    answers.pop_front();
    return answer;
  }
};

inline HttpReply Reply(long status, std::string body) {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

// Runs command lines as `puddle ARGS...` against a FakeServer.
class CliHarness {
 public:
  CliHarness()
      : server(std::make_shared<FakeServer>()),
        terminal(std::make_shared<FakeTerminal>()),
        clock(std::make_shared<FakeClock>(FromUnixMillis(1'700'000'000'000))) {
    vars["HOME"] = home.path().string();
    server->handler = [](const HttpCall&) -> Result<HttpReply> {
      return Reply(404, R"({"error":{"code":"not_found","message":"no route","requestId":"r"}})");
    };
  }

  // Returns the exit code, as the `puddle` binary's main would.
  int Run(std::vector<std::string> args) {
    out.str("");
    err.str("");
    auto env = std::make_shared<ClientEnvironment>();
    env->in = &in;
    env->out = &out;
    env->err = &err;
    env->terminal = terminal;
    env->env = [this](const std::string& name) -> std::optional<std::string> {
      auto found = vars.find(name);
      if (found == vars.end() || found->second.empty()) return std::nullopt;
      return found->second;
    };
    env->make_transport = [this](const std::string& base_url,
                                 const TlsPolicy& tls) -> Result<std::unique_ptr<HttpTransport>> {
      server->connections.push_back({base_url, tls});
      return std::unique_ptr<HttpTransport>(std::make_unique<FakeTransport>(server));
    };
    env->clock = clock;
    env->sleep = [this](std::chrono::milliseconds duration) {
      slept += duration;
      clock->Advance(duration);
    };
    env->hostname = "testhost";

    CLI::App app("puddle");
    app.require_subcommand(1);
    int exit_code = 0;
    cli::AddClientCommands(app, exit_code, env);

    std::vector<const char*> argv{"puddle"};
    for (const auto& arg : args) argv.push_back(arg.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& error) {
      return ExitCodeForParseError(app, error, out, err);
    }
    return exit_code;
  }

  std::filesystem::path ConfigPath() const {
    return home.path() / ".config" / "puddle" / "cli.yaml";
  }

  TempDir home;
  std::map<std::string, std::string> vars;
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  std::shared_ptr<FakeServer> server;
  std::shared_ptr<FakeTerminal> terminal;
  std::shared_ptr<FakeClock> clock;
  std::chrono::milliseconds slept{0};
};

}  // namespace puddle::cli::testing
