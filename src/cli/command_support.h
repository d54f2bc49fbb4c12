// Pieces shared by the login and systems commands.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cli/api_client.h"
#include "cli/client_environment.h"
#include "cli/connection.h"

namespace CLI {
class App;
}

namespace puddle::cli {

// Returns an Error with `code` and `message` and nothing else.
inline Error CommandError(ErrorCode code, std::string message) {
  Error error;
  error.code = code;
  error.message = std::move(message);
  return error;
}

// Adds --ca-cert FILE and --insecure, bound to `options`, to `command`.
void AddConnectionOptions(CLI::App& command, ConnectionOptions& options);

// Resolves the connection from the environment and cli.yaml and returns a
// client that authenticates with the API key. Prints the error and returns
// nullptr when that fails.
std::unique_ptr<ApiClient> ConnectWithApiKey(const ClientEnvironment& env,
                                             const ConnectionOptions& options);

// Runs `command` and stores its exit code; an exception escaping it is printed
// as an internal error with exit code 1.
void RunCommand(const ClientEnvironment& env, int& exit_code, const std::function<int()>& command);

// Writes an API reply body as received, ending with a newline.
void PrintJsonBody(std::ostream& out, const std::string& body);

}  // namespace puddle::cli
