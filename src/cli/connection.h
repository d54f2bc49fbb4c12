// Where and how each client command connects: server URL, TLS check, API key.
//
// Values come from the environment first, then from cli.yaml. The stored API
// key and pin belong to the URL stored with them and are used only for that
// URL. When PUDDLE_URL names another server, the key must come from the
// environment too, and the stored key is never sent there.
#pragma once

#include <string>

#include "cli/cli_config.h"
#include "cli/http_transport.h"
#include "common/result.h"

namespace puddle::cli {

// The options every client command accepts.
struct ConnectionOptions {
  std::string ca_cert;    // --ca-cert FILE; PUDDLE_CA_CERT when empty
  bool insecure = false;  // --insecure
};

struct Connection {
  std::string base_url;
  TlsPolicy tls;
  std::string api_key_id;
  std::string api_secret_key;
};

// Validates a server URL and returns it without a trailing slash. It must be
// https://host[:port][/path], without user name, password, query or fragment.
Result<std::string> NormalizeBaseUrl(std::string_view url);

// Reads the first of `upper` and `lower` that is set; fails when both are set
// to different values, naming both.
Result<std::optional<std::string>> LookupEitherSpelling(const EnvLookup& env,
                                                        const std::string& upper,
                                                        const std::string& lower);

// Chooses the certificate check: --insecure, else a CA file (flag, then
// PUDDLE_CA_CERT, then `stored_ca_cert`), else `stored_fingerprint` as a pin,
// else the system's CA store.
TlsPolicy ChooseTlsPolicy(const EnvLookup& env, const ConnectionOptions& options,
                          const std::string& stored_fingerprint, const std::string& stored_ca_cert);

// Resolves the connection for commands that need an API key, reading cli.yaml
// at CliConfigPath(env). Fails with a message naming what is missing and how
// to provide it.
Result<Connection> ResolveConnection(const EnvLookup& env, const ConnectionOptions& options);

}  // namespace puddle::cli
