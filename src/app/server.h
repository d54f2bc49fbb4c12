// Serve: wires config, store, queue, providers, auth, services, workers and
// the API together and runs them until SIGTERM or SIGINT.
#pragma once

#include "common/result.h"
#include "config/config.h"

namespace puddle {

// Runs `puddle serve` with a loaded config. Returns the process exit code.
// REQUIRES: SIGTERM and SIGINT are blocked in every thread (main does this
// before any thread starts), so Serve can wait for them with sigwait.
int Serve(const Config& config);

// Opens the data directory and store as `serve` does and sets a user's password.
int ResetPassword(const Config& config, const std::string& username, const std::string& password);

}  // namespace puddle
