// `puddle login` and `puddle logout`.
#pragma once

#include <memory>

#include "cli/client_environment.h"

namespace CLI {
class App;
}

namespace puddle::cli {

void AddLoginCommand(CLI::App& app, int& exit_code, std::shared_ptr<const ClientEnvironment> env);
void AddLogoutCommand(CLI::App& app, int& exit_code, std::shared_ptr<const ClientEnvironment> env);

}  // namespace puddle::cli
