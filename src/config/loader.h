// Loading config.yaml: finding the file, checking every key, environment overrides.
//
// Where the file comes from, first match wins:
//   1. LoadOptions::config_path (the --config flag); it must exist.
//   2. $PUDDLE_CONFIG_DIR/config.yaml, or $PUDDLE_config_dir/config.yaml (the
//      original's spelling); it must exist when the variable is set.
//   3. LoadOptions::system_config_path (/etc/puddle/config.yaml) when it exists.
//   4. No file: every key keeps its default and Config::source_path is empty.
// A file holding `{}`, nothing, or only comments also means all defaults.
//
// Precedence is flag > environment > file > default. LoadConfig applies the
// file, then PUDDLE_DATA_DIR and PUDDLE_LISTEN; the caller applies flags
// afterwards with ApplyOverride.
//
// Errors have code kValidationFailed and a message of one problem per line,
// each "path:line: key: problem". Problems are unknown keys (with "did you
// mean" when a known key is close), wrong types, invalid values, two spellings
// of one key, and refused parts switched on. Error::field is the first
// problem's key. A missing
// file is kNotFound. Messages and Config::warnings never contain the value of
// a secret key. Loading makes no network call; it reads the config file, the
// environment and the TLS files' metadata.
//
// Warnings (ignored keys and parts, the fake provider, unreachable system
// origins) are returned in Config::warnings for the caller to log.
//
// Limitations: ApplyOverride checks the overriding value alone; checks across
// keys (tls.certFile with tls.keyFile, listen against
// providers.local.listenAddress) run only on the file and the environment.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "config/config.h"

namespace puddle {

struct LoadOptions {
  // Explicit path from --config; empty to search.
  std::string config_path;
  // Read when neither --config nor the config-dir variable is set.
  std::string system_config_path = "/etc/puddle/config.yaml";
};

// Finds, reads and checks the config file, then applies the environment.
Result<Config> LoadConfig(const LoadOptions& options);

// Outcome of checking a config, kept even when loading fails, for
// `puddle config check`: the keys read with refused ones marked, the warnings,
// and the error if any.
struct ConfigInspection {
  Config config;  // keys_read and warnings are filled even when `error` is set
  std::optional<Error> error;
};

// Does what LoadConfig does and keeps the report of a config that failed.
ConfigInspection InspectConfig(const LoadOptions& options);

// Checks `text` as if read from `source_path`, without reading the
// environment. Used by LoadConfig and by tests and fuzzers.
Result<Config> LoadConfigFromText(std::string_view text, const std::string& source_path);

// Sets the used key `key` (any accepted spelling) from a flag's `value`,
// checked as in the file, and records it for `config check` with `origin`
// ("--listen") as the spelling read.
Status ApplyOverride(Config& config, std::string_view key, std::string_view value,
                     std::string_view origin);

// Renders what `puddle config check` prints: one line per key read,
// "<canonical key>\t<spelling read>\t<used|ignored|refused>", in the order
// read, then one "warning: ..." line per warning. Values are never printed.
std::string FormatConfigCheck(const Config& config);

}  // namespace puddle
