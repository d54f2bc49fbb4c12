// The client's stored login: cli.yaml under the user's configuration directory.
//
// `puddle login` writes the server URL, the SHA-256 fingerprint of the server's
// certificate, an optional CA file and an API key there; it never stores a
// password. The file is written with mode 0600 in a 0700 directory, through a
// temporary file and a rename, so a reader never sees half a file.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"

namespace puddle::cli {

// Looks up one environment variable; nullopt when it is unset or empty.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Returns a lookup over the process environment (getenv).
EnvLookup ProcessEnvironment();

struct CliConfig {
  std::string url;  // "https://puddle.example.com:8443", no trailing slash
  // Colon-separated upper-case hex SHA-256 of the server certificate's DER form,
  // as `openssl x509 -noout -fingerprint -sha256` prints it.
  std::string fingerprint_sha256;
  // CA file given to `login --ca-cert`; later commands verify the chain with it.
  std::string ca_cert;
  std::string api_key_id;
  std::string api_secret_key;
};

// Returns ${XDG_CONFIG_HOME}/puddle/cli.yaml when XDG_CONFIG_HOME is an
// absolute path, else ${HOME}/.config/puddle/cli.yaml. Fails when neither
// variable gives a directory.
Result<std::filesystem::path> CliConfigPath(const EnvLookup& env);

// Reads `path`. Returns nullopt when the file does not exist; fails when it
// cannot be read or is not a YAML map of strings. Unknown keys are ignored so
// that an older client can read a file a newer one wrote.
Result<std::optional<CliConfig>> ReadCliConfig(const std::filesystem::path& path);

// Returns a warning when `path` can be read or written by other users, else "".
std::string CheckCliConfigPermissions(const std::filesystem::path& path);

// Writes `config` to `path` with mode 0600, creating the parent directories
// with mode 0700 and tightening the last one to 0700 if it exists.
Status WriteCliConfig(const std::filesystem::path& path, const CliConfig& config);

// Deletes `path`; succeeds when it does not exist.
Status RemoveCliConfig(const std::filesystem::path& path);

}  // namespace puddle::cli
