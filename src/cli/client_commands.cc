#include "cli/client_commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <iostream>
#include <thread>

#include "cli/client_environment.h"
#include "cli/curl/curl_transport.h"
#include "cli/login_commands.h"
#include "cli/systems_commands.h"

namespace puddle {

namespace cli {

ClientEnvironment DefaultClientEnvironment() {
  ClientEnvironment env;
  env.in = &std::cin;
  env.out = &std::cout;
  env.err = &std::cerr;
  env.terminal = std::make_shared<ProcessTerminal>();
  env.env = ProcessEnvironment();
  env.make_transport = [](const std::string& base_url,
                          const TlsPolicy& tls) -> Result<std::unique_ptr<HttpTransport>> {
    auto transport = CurlTransport::Create(base_url, tls);
    if (!transport) return tl::unexpected(transport.error());
    return std::unique_ptr<HttpTransport>(std::move(*transport));
  };
  env.clock = std::make_shared<SystemClock>();
  env.sleep = [](std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); };
  return env;
}

void PrintError(std::ostream& err, const Error& error) {
  err << "puddle: " << error.message;
  if (!error.field.empty()) err << " (field: " << error.field << ")";
  if (error.code == ErrorCode::kRateLimited && error.retry_after_seconds > 0) {
    err << "; retry after " << error.retry_after_seconds << " s";
  }
  err << "\n";
}

void AddClientCommands(CLI::App& app, int& exit_code,
                       std::shared_ptr<const ClientEnvironment> env) {
  AddLoginCommand(app, exit_code, env);
  AddLogoutCommand(app, exit_code, env);
  AddSystemsCommands(app, exit_code, env);
}

}  // namespace cli

void AddClientCommands(CLI::App& app, int& exit_code) {
  cli::AddClientCommands(
      app, exit_code,
      std::make_shared<const cli::ClientEnvironment>(cli::DefaultClientEnvironment()));
}

int ExitCodeForParseError(CLI::App& app, const CLI::ParseError& error) {
  return ExitCodeForParseError(app, error, std::cout, std::cerr);
}

int ExitCodeForParseError(CLI::App& app, const CLI::ParseError& error, std::ostream& out,
                          std::ostream& err) {
  int code = app.exit(error, out, err);
  return code == 0 ? cli::kExitOk : cli::kExitUsage;
}

}  // namespace puddle
