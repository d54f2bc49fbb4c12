// Turning an image's LaunchSpec into the argv and environment of one product
// process: placeholder expansion and the clean environment.
//
// Pure functions of their inputs, thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/catalog.h"

namespace puddle::local {

// Values substituted for the LaunchSpec placeholders.
struct PlaceholderValues {
  std::string port;       // {port}
  std::string address;    // {address}
  std::string base_path;  // {basePath}, "/systems/<id>/"
  std::string data_dir;   // {dataDir}, the system's home directory
  std::string system_id;  // {systemId}
  std::string token;      // {token}, only inside env values
};

// Values the environment is built from besides the image's own variables.
struct BaseEnvironment {
  std::string home;
  std::string user;
  std::string installation_id;
  std::string system_id;
};

// The product's argv and environment ("NAME=value"), ready for execve.
struct LaunchPlan {
  std::vector<std::string> argv;
  std::vector<std::string> environment;
};

// Expands the placeholders in `spec`. Fails with validation_failed when the
// command is empty, an argument contains {token} (a token on the command line
// is readable by every user of the host through /proc) or NUL, or an
// environment name is invalid.
Result<LaunchPlan> BuildLaunchPlan(const LaunchSpec& spec, const PlaceholderValues& values,
                                   const BaseEnvironment& base);

// Replaces every known placeholder in `text`; {token} only when `allow_token`.
// Unknown text in braces is kept as it is.
std::string ExpandPlaceholders(const std::string& text, const PlaceholderValues& values,
                               bool allow_token);

}  // namespace puddle::local
