// ClientEnvironment: what the client commands read and write outside memory.
//
// The process uses DefaultClientEnvironment(); tests pass their own streams,
// environment, transport, clock and sleep so that commands run without a
// server and without waiting.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include "cli/cli_config.h"
#include "cli/http_transport.h"
#include "cli/terminal.h"
#include "common/clock.h"
#include "common/result.h"

namespace puddle::cli {

// Exit codes of the client commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
// `--wait` or `systems wait` ended with the system failed, elsewhere, or timed out.
inline constexpr int kExitWaitFailed = 3;

using TransportFactory = std::function<Result<std::unique_ptr<HttpTransport>>(
    const std::string& base_url, const TlsPolicy& tls)>;
using Sleeper = std::function<void(std::chrono::milliseconds)>;

struct ClientEnvironment {
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  std::shared_ptr<Terminal> terminal;
  EnvLookup env;
  TransportFactory make_transport;
  std::shared_ptr<const Clock> clock;
  Sleeper sleep;
  std::string hostname;  // names the API key `puddle login` creates: cli@<hostname>
};

// Standard streams, the process environment, libcurl, the system clock.
ClientEnvironment DefaultClientEnvironment();

// Prints `error` for the user: "puddle: <message> (field: <field>)".
void PrintError(std::ostream& err, const Error& error);

}  // namespace puddle::cli
