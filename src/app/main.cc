// The puddle binary: the server, admin commands on the host, and the client CLI.
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "app/server.h"
#include "cli/client_commands.h"
#include "common/crypto.h"
#include "common/log.h"
#include "config/loader.h"
#include "providers/local/supervisor.h"

namespace {

struct ServerFlags {
  std::string config_path;
  std::string data_dir;
  std::string listen;
  int workers = -1;
};

// The optional server flags a command takes.
struct ServerFlagSet {
  bool listen = false;
  bool workers = false;
  const char* workers_help = "";
};

void AddServerFlags(CLI::App& command, ServerFlags& flags, const ServerFlagSet& set) {
  command.add_option("--config", flags.config_path,
                     "Config file (default: $PUDDLE_CONFIG_DIR/config.yaml, else "
                     "/etc/puddle/config.yaml when present)");
  command.add_option("--data-dir", flags.data_dir,
                     "Directory for the SQLite database, certificate and systems (default "
                     "./puddle-data)");
  if (set.listen) {
    command.add_option("--listen", flags.listen, "HTTPS address HOST:PORT (default 127.0.0.1:8443)");
  }
  if (set.workers) {
    command.add_option("--workers", flags.workers, set.workers_help)
        ->check(CLI::NonNegativeNumber);
  }
}

// Loads the config and applies flags, which win over file and environment.
puddle::Result<puddle::Config> LoadWithFlags(const ServerFlags& flags) {
  auto config = puddle::LoadConfig({flags.config_path});
  if (!config) return config;
  if (!flags.data_dir.empty()) {
    PUDDLE_RETURN_IF_ERROR(puddle::ApplyOverride(*config, "dataDir", flags.data_dir, "--data-dir"));
  }
  if (!flags.listen.empty()) {
    PUDDLE_RETURN_IF_ERROR(puddle::ApplyOverride(*config, "listen", flags.listen, "--listen"));
  }
  if (flags.workers >= 0) config->workers = flags.workers;
  return config;
}

int ConfigError(const puddle::Error& error) {
  std::fprintf(stderr, "puddle: invalid configuration:\n%s\n", error.message.c_str());
  return 1;
}

// Loads the config and runs `command` with it; returns the exit code.
int RunServerCommand(const ServerFlags& flags, int (*command)(const puddle::Config&)) {
  auto config = LoadWithFlags(flags);
  if (!config) return ConfigError(config.error());
  if (config->log_level == "debug" || config->log_level == "trace") {
    puddle::log::SetLevel(puddle::log::Level::kDebug);
  }
  return command(*config);
}

std::string ReadPasswordFromStdin() {
  std::string password;
  std::getline(std::cin, password);
  return password;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "supervise") {
    return puddle::local::RunSupervisor(argc, argv);
  }
  umask(077);

  // Block termination signals before any thread starts, so `serve` and
  // `worker` receive them with sigwait and shut down in order.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  std::string subcommand = argc >= 2 ? argv[1] : "";
  bool serving = subcommand == "serve" || subcommand == "worker";
  if (serving) pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"Puddle: launch ML systems (Jupyter and more) on an admin's terms"};
  app.require_subcommand(1);
  int exit_code = 0;

  ServerFlags serve_flags;
  auto* serve = app.add_subcommand("serve", "Run the API, web pages, workers and loops");
  AddServerFlags(*serve, serve_flags,
                 {.listen = true,
                  .workers = true,
                  .workers_help = "Job workers in this process, overriding the config's workers; "
                                  "0 serves the API and runs no job (default 10)"});
  serve->callback([&] { exit_code = RunServerCommand(serve_flags, puddle::Serve); });

  ServerFlags worker_flags;
  auto* worker = app.add_subcommand(
      "worker", "Run job workers and loops without the API, sharing the PostgreSQL store of "
                "`puddle serve`");
  AddServerFlags(*worker, worker_flags,
                 {.workers = true,
                  .workers_help = "Job workers in this process, overriding the config's workers "
                                  "(default 10)"});
  worker->callback([&] { exit_code = RunServerCommand(worker_flags, puddle::RunWorker); });

  auto* config_command = app.add_subcommand("config", "Inspect the configuration");
  config_command->require_subcommand(1);
  std::string check_path;
  auto* check = config_command->add_subcommand(
      "check", "Print every key read, the spelling used and its class; no network calls");
  check->add_option("--config", check_path, "Config file to check");
  check->callback([&] {
    auto inspection = puddle::InspectConfig({check_path});
    std::cout << "# " << (inspection.config.source_path.empty() ? "no config file; all defaults"
                                                                : inspection.config.source_path)
              << "\n"
              << puddle::FormatConfigCheck(inspection.config);
    if (inspection.error) {
      std::cerr << "puddle: invalid configuration:\n" << inspection.error->message << "\n";
      exit_code = 1;
    }
  });

  ServerFlags user_flags;
  std::string username;
  bool password_stdin = false;
  auto* user = app.add_subcommand("user", "Manage users on the host, without the API");
  user->require_subcommand(1);
  auto* reset = user->add_subcommand(
      "reset-password", "Set a new password for NAME and end their sessions; prints it unless "
                        "--password-stdin");
  AddServerFlags(*reset, user_flags, {});
  reset->add_option("name", username, "User name")->required();
  reset->add_flag("--password-stdin", password_stdin, "Read the new password from standard input");
  reset->callback([&] {
    auto config = LoadWithFlags(user_flags);
    if (!config) {
      exit_code = ConfigError(config.error());
      return;
    }
    if (!puddle::InitCrypto()) {
      exit_code = 1;
      return;
    }
    std::string password = password_stdin ? ReadPasswordFromStdin() : puddle::RandomToken(18);
    exit_code = puddle::ResetPassword(*config, username, password);
    if (exit_code == 0 && !password_stdin) std::cout << "New password: " << password << "\n";
  });

  puddle::AddClientCommands(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return puddle::ExitCodeForParseError(app, error);
  }
  return exit_code;
}
