#include "model/catalog.h"

#include <boost/json.hpp>

#include "common/json.h"

namespace puddle {

boost::json::object LaunchSpecToJson(const LaunchSpec& spec) {
  boost::json::array command;
  for (const auto& argument : spec.command) command.emplace_back(argument);
  boost::json::object env;
  for (const auto& [key, value] : spec.env) env[key] = value;
  return {{"command", std::move(command)},
          {"env", std::move(env)},
          {"healthPath", spec.health_path},
          {"basePathMode", spec.base_path_mode},
          {"startTimeoutSeconds", spec.start_timeout_seconds}};
}

namespace {

tl::unexpected<Error> Invalid(const std::string& field, const std::string& message) {
  return MakeError(ErrorCode::kValidationFailed, field + " " + message, field);
}

}  // namespace

Result<LaunchSpec> LaunchSpecFromJson(const boost::json::value& value, const std::string& prefix) {
  if (!value.is_object()) return Invalid(prefix, "must be an object");
  const auto& object = value.as_object();
  std::string dotted = prefix + ".";
  PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(
      object, {"command", "env", "healthPath", "basePathMode", "startTimeoutSeconds"}, dotted));

  LaunchSpec spec;
  const auto* command = object.if_contains("command");
  if (command == nullptr || !command->is_array() || command->as_array().empty()) {
    return Invalid(dotted + "command", "must be a non-empty array of strings");
  }
  for (const auto& argument : command->as_array()) {
    if (!argument.is_string()) return Invalid(dotted + "command", "must contain only strings");
    std::string text(argument.as_string());
    if (text.find("{token}") != std::string::npos) {
      return Invalid(dotted + "command",
                     "must not contain {token}: secrets travel only in env values");
    }
    spec.command.push_back(std::move(text));
  }

  if (const auto* env = object.if_contains("env"); env != nullptr && !env->is_null()) {
    if (!env->is_object()) return Invalid(dotted + "env", "must be an object of strings");
    for (const auto& entry : env->as_object()) {
      if (!entry.value().is_string()) return Invalid(dotted + "env", "must contain only strings");
      spec.env[std::string(entry.key())] = std::string(entry.value().as_string());
    }
  }

  PUDDLE_ASSIGN_OR_RETURN(auto health, json::OptionalString(object, "healthPath"));
  if (health) spec.health_path = *health;
  if (!spec.health_path.empty() && spec.health_path[0] == '/') {
    return Invalid(dotted + "healthPath", "must be relative to the base path (no leading /)");
  }
  PUDDLE_ASSIGN_OR_RETURN(auto mode, json::OptionalString(object, "basePathMode"));
  if (mode) spec.base_path_mode = *mode;
  if (spec.base_path_mode != "prefix" && spec.base_path_mode != "strip") {
    return Invalid(dotted + "basePathMode", "must be \"prefix\" or \"strip\"");
  }
  PUDDLE_ASSIGN_OR_RETURN(auto timeout, json::OptionalInt(object, "startTimeoutSeconds"));
  if (timeout) {
    if (*timeout < 1 || *timeout > 86400) {
      return Invalid(dotted + "startTimeoutSeconds", "must be between 1 and 86400");
    }
    spec.start_timeout_seconds = static_cast<int>(*timeout);
  }
  return spec;
}

}  // namespace puddle
