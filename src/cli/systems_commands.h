// `puddle systems list|get|create|start|stop|reboot|delete|wait`.
#pragma once

#include <memory>

#include "cli/client_environment.h"

namespace CLI {
class App;
}

namespace puddle::cli {

void AddSystemsCommands(CLI::App& app, int& exit_code,
                        std::shared_ptr<const ClientEnvironment> env);

}  // namespace puddle::cli
