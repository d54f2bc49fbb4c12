#include "providers/local/launch_plan.h"

#include <string_view>
#include <utility>

namespace puddle::local {
namespace {

constexpr std::string_view kTokenPlaceholder = "{token}";

// The environment every product starts from; the image's variables come on
// top of it, except the two tags, which always name this system.
std::map<std::string, std::string> BaseVariables(const BaseEnvironment& base) {
  return {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", base.home},
      {"USER", base.user},
      {"LOGNAME", base.user},
      {"LANG", "C.UTF-8"},
  };
}

bool IsValidVariableName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == '=' || c == '\0') return false;
  }
  return true;
}

}  // namespace

std::string ExpandPlaceholders(const std::string& text, const PlaceholderValues& values,
                               bool allow_token) {
  const std::pair<std::string_view, const std::string*> replacements[] = {
      {"{port}", &values.port},         {"{address}", &values.address},
      {"{basePath}", &values.base_path}, {"{dataDir}", &values.data_dir},
      {"{systemId}", &values.system_id}, {kTokenPlaceholder, &values.token},
  };
  std::string result;
  size_t position = 0;
  while (position < text.size()) {
    bool replaced = false;
    if (text[position] == '{') {
      for (const auto& [placeholder, value] : replacements) {
        if (placeholder == kTokenPlaceholder && !allow_token) continue;
        if (text.compare(position, placeholder.size(), placeholder) == 0) {
          result += *value;
          position += placeholder.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) result += text[position++];
  }
  return result;
}

Result<LaunchPlan> BuildLaunchPlan(const LaunchSpec& spec, const PlaceholderValues& values,
                                   const BaseEnvironment& base) {
  if (spec.command.empty()) {
    return MakeError(ErrorCode::kValidationFailed,
                     "the image's launch command is empty; set launch.command to an argv array",
                     "launch.command");
  }

  LaunchPlan plan;
  for (size_t i = 0; i < spec.command.size(); ++i) {
    const std::string& argument = spec.command[i];
    if (argument.find(kTokenPlaceholder) != std::string::npos) {
      return MakeError(ErrorCode::kValidationFailed,
                       "launch.command argument " + std::to_string(i) +
                           " contains {token}; any user of the host can read a command line, so "
                           "pass the token in launch.env (for example JUPYTER_TOKEN={token})",
                       "launch.command");
    }
    if (argument.find('\0') != std::string::npos) {
      return MakeError(ErrorCode::kValidationFailed,
                       "launch.command argument " + std::to_string(i) + " contains a NUL byte",
                       "launch.command");
    }
    plan.argv.push_back(ExpandPlaceholders(argument, values, /*allow_token=*/false));
  }

  // Image variables override the base ones; the tags are set last so a
  // process can always be traced back to its system.
  std::map<std::string, std::string> variables = BaseVariables(base);
  for (const auto& [name, value] : spec.env) {
    if (!IsValidVariableName(name)) {
      return MakeError(ErrorCode::kValidationFailed,
                       "launch.env name \"" + name + "\" is invalid; names must be non-empty "
                       "and contain neither '=' nor NUL",
                       "launch.env");
    }
    if (value.find('\0') != std::string::npos) {
      return MakeError(ErrorCode::kValidationFailed,
                       "launch.env value of " + name + " contains a NUL byte", "launch.env");
    }
    variables[name] = ExpandPlaceholders(value, values, /*allow_token=*/true);
  }
  variables["PUDDLE_INSTALLATION_ID"] = base.installation_id;
  variables["PUDDLE_SYSTEM_ID"] = base.system_id;

  for (const auto& [name, value] : variables) plan.environment.push_back(name + "=" + value);
  return plan;
}

}  // namespace puddle::local
