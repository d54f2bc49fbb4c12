#include "config/loader.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "config/checker.h"
#include "config/schema.h"

namespace puddle {
namespace {

using config::Checker;
using config::KeyClass;
using config::KeyDefinition;

// Config files are a few kilobytes; a larger file is a wrong path.
constexpr size_t kMaxConfigBytes = 1 << 20;

ConfigInspection FailedInspection(ErrorCode code, std::string message) {
  ConfigInspection inspection;
  Error error;
  error.code = code;
  error.message = std::move(message);
  inspection.error = std::move(error);
  return inspection;
}

std::string EnvironmentValue(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

bool IsExistingPath(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0;
}

// Finds the config file; returns an empty path when there is none to read.
Result<std::string> LocateConfigFile(const LoadOptions& options) {
  if (!options.config_path.empty()) return options.config_path;

  std::string upper = EnvironmentValue("PUDDLE_CONFIG_DIR");
  std::string original = EnvironmentValue("PUDDLE_config_dir");
  if (!upper.empty() && !original.empty() && upper != original) {
    return MakeError(ErrorCode::kValidationFailed,
                     "PUDDLE_CONFIG_DIR (" + upper + ") and PUDDLE_config_dir (" + original +
                         ") name different directories; set one of them");
  }
  std::string directory = !upper.empty() ? upper : original;
  if (!directory.empty()) return directory + "/config.yaml";

  if (!options.system_config_path.empty() && IsExistingPath(options.system_config_path)) {
    return options.system_config_path;
  }
  return std::string();
}

Result<std::string> ReadConfigFile(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    int error = errno;
    return MakeError(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kValidationFailed,
                     path + ": cannot read the config file: " + std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    return MakeError(ErrorCode::kValidationFailed,
                     path + ": cannot read the config file: not a regular file");
  }
  if (static_cast<size_t>(info.st_size) > kMaxConfigBytes) {
    return MakeError(ErrorCode::kValidationFailed,
                     path + ": the config file is larger than 1 MiB; check the path");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return MakeError(ErrorCode::kValidationFailed,
                     path + ": cannot read the config file: " + std::strerror(errno));
  }
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

}  // namespace

ConfigInspection InspectConfig(const LoadOptions& options) {
  auto path = LocateConfigFile(options);
  if (!path) return FailedInspection(path.error().code, path.error().message);

  std::string text;
  if (!path->empty()) {
    auto read = ReadConfigFile(*path);
    if (!read) return FailedInspection(read.error().code, read.error().message);
    text = std::move(*read);
  }

  std::vector<std::pair<std::string, std::string>> variables;
  for (const auto& [name, key] : config::kEnvironmentOverrides) {
    std::string value = EnvironmentValue(name);
    if (!value.empty()) variables.emplace_back(name, value);
  }

  Checker checker(*path);
  checker.CheckDocument(text);
  checker.ApplyEnvironment(variables);
  checker.CheckAcrossKeys();
  return checker.Finish();
}

Result<Config> LoadConfig(const LoadOptions& options) {
  ConfigInspection inspection = InspectConfig(options);
  if (inspection.error) return tl::unexpected<Error>(std::move(*inspection.error));
  return std::move(inspection.config);
}

Result<Config> LoadConfigFromText(std::string_view text, const std::string& source_path) {
  Checker checker(source_path);
  checker.CheckDocument(text);
  checker.CheckAcrossKeys();
  ConfigInspection inspection = checker.Finish();
  if (inspection.error) return tl::unexpected<Error>(std::move(*inspection.error));
  return std::move(inspection.config);
}

Status ApplyOverride(Config& config, std::string_view key, std::string_view value,
                     std::string_view origin) {
  const KeyDefinition* definition = config::FindKeyBySpelling(key);
  if (definition == nullptr || definition->key_class != KeyClass::kUsed) {
    return MakeError(ErrorCode::kValidationFailed,
                     std::string(origin) + ": " + std::string(key) + " is not a key Puddle uses");
  }
  auto problem =
      ReadUsedValue(*definition, definition->key, YAML::Node(std::string(value)), 0, config);
  if (problem) {
    return MakeError(ErrorCode::kValidationFailed,
                     std::string(origin) + ": " + problem->key + ": " + problem->text,
                     std::string(definition->key));
  }
  config.keys_read.push_back({std::string(definition->key), std::string(origin), "used"});
  return Ok();
}

std::string FormatConfigCheck(const Config& config) {
  std::string output;
  for (const ConfigKeyReport& report : config.keys_read) {
    output += report.key + "\t" + report.spelling + "\t" + report.key_class + "\n";
  }
  for (const std::string& warning : config.warnings) output += "warning: " + warning + "\n";
  return output;
}

}  // namespace puddle
