// The client CLI's commands in the `puddle` binary: login, logout, systems.
//
// They talk to a Puddle server's REST API over HTTPS, authenticating with an
// API key from the environment (PUDDLE_URL, PUDDLE_API_KEY_ID,
// PUDDLE_API_SECRET_KEY, or the lower-case spellings PUDDLE_api_key_id and
// PUDDLE_api_secret_key) or from the cli.yaml that `puddle login` writes.
#pragma once

#include <iosfwd>
#include <memory>

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace puddle {

// Registers login, logout and `systems ...` subcommands on `app`. `exit_code` receives the
// process exit code the chosen command wants (0 ok, 1 error, 2 usage, 3 --wait ended in failed
// or timed out). `exit_code` must outlive app.parse(), which runs the command.
void AddClientCommands(CLI::App& app, int& exit_code);

// Prints a CLI11 parse error the way CLI11 does (app.exit) and returns the
// process exit code: 0 for --help, 2 for a usage error.
int ExitCodeForParseError(CLI::App& app, const CLI::ParseError& error);
int ExitCodeForParseError(CLI::App& app, const CLI::ParseError& error, std::ostream& out,
                          std::ostream& err);

namespace cli {
struct ClientEnvironment;

// AddClientCommands() with the given streams, environment, transport, clock
// and sleep instead of the process's; tests use it.
void AddClientCommands(CLI::App& app, int& exit_code, std::shared_ptr<const ClientEnvironment> env);
}  // namespace cli

}  // namespace puddle
