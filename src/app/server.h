// The server commands: `serve` runs the API with the workers and loops,
// `worker` the workers and loops alone, both over a Runtime (runtime.h).
#pragma once

#include <string>

#include "common/result.h"
#include "config/config.h"

namespace puddle {

// Runs `puddle serve` with a loaded config. Returns the process exit code.
// REQUIRES: SIGTERM and SIGINT are blocked in every thread (main does this
// before any thread starts), so Serve can wait for them with sigwait.
int Serve(const Config& config);

// Runs `puddle worker`: config.workers job workers and the periodic loops,
// without the API. Fails (exit code 1) unless the store is PostgreSQL, the
// only store several processes can share. REQUIRES: as for Serve.
int RunWorker(const Config& config);

// Opens the configured store, as `serve` does, and sets a user's password.
int ResetPassword(const Config& config, const std::string& username, const std::string& password);

}  // namespace puddle
