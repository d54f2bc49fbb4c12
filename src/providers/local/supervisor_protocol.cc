#include "providers/local/supervisor_protocol.h"

#include <sys/wait.h>

#include <boost/json.hpp>

#include "common/json.h"

namespace puddle::local {
namespace {

boost::json::array ToArray(const std::vector<std::string>& items) {
  boost::json::array array;
  for (const auto& item : items) array.emplace_back(item);
  return array;
}

Result<std::vector<std::string>> ReadStringArray(const boost::json::object& object,
                                                 std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || !it->value().is_array()) {
    return InternalError("supervisor spec: " + std::string(key) + " must be an array of strings");
  }
  std::vector<std::string> items;
  for (const auto& item : it->value().as_array()) {
    if (!item.is_string()) {
      return InternalError("supervisor spec: " + std::string(key) +
                           " must be an array of strings");
    }
    items.emplace_back(item.as_string());
  }
  return items;
}

// Parses internal JSON; the message never quotes the text, which may hold a token.
Result<boost::json::object> ParseInternalObject(std::string_view text, std::string_view subject) {
  auto object = json::ParseObject(text);
  if (!object) return InternalError(std::string(subject) + " is not a JSON object");
  return object;
}

}  // namespace

std::string SerializeSupervisorSpec(const SupervisorSpec& spec) {
  boost::json::object object;
  object["systemDir"] = spec.system_dir;
  object["homeDir"] = spec.home_dir;
  object["argv"] = ToArray(spec.argv);
  object["environment"] = ToArray(spec.environment);
  object["memoryCgroup"] = spec.memory_cgroup;
  return json::Serialize(object);
}

Result<SupervisorSpec> ParseSupervisorSpec(std::string_view text) {
  auto object = ParseInternalObject(text, "supervisor spec");
  if (!object) return tl::unexpected(object.error());

  SupervisorSpec spec;
  auto system_dir = json::RequiredString(*object, "systemDir");
  auto home_dir = json::RequiredString(*object, "homeDir");
  auto memory_cgroup = json::OptionalString(*object, "memoryCgroup");
  if (!system_dir || !home_dir || !memory_cgroup) {
    return InternalError("supervisor spec: systemDir and homeDir must be strings");
  }
  spec.system_dir = *system_dir;
  spec.home_dir = *home_dir;
  spec.memory_cgroup = memory_cgroup->value_or("");

  auto argv = ReadStringArray(*object, "argv");
  if (!argv) return tl::unexpected(argv.error());
  auto environment = ReadStringArray(*object, "environment");
  if (!environment) return tl::unexpected(environment.error());
  if (argv->empty()) return InternalError("supervisor spec: argv is empty");
  spec.argv = std::move(*argv);
  spec.environment = std::move(*environment);
  return spec;
}

std::string ExitRecord::Description() const {
  if (exit_code) return "exit status " + std::to_string(*exit_code);
  if (signal) {
    std::string text = "killed by signal " + std::to_string(*signal);
    if (out_of_memory) text += " (out of memory)";
    return text;
  }
  return "ended for an unknown reason";
}

std::string SerializeExitRecord(const ExitRecord& record) {
  boost::json::object object;
  object["pid"] = record.pid;
  object["startTicks"] = record.start_ticks;
  if (record.exit_code) object["exitCode"] = *record.exit_code;
  if (record.signal) object["signal"] = *record.signal;
  object["outOfMemory"] = record.out_of_memory;
  object["description"] = record.Description();
  return json::Serialize(object);
}

Result<ExitRecord> ParseExitRecord(std::string_view text) {
  auto object = ParseInternalObject(text, "exit record");
  if (!object) return tl::unexpected(object.error());

  auto pid = json::OptionalInt(*object, "pid");
  auto start_ticks = json::OptionalInt(*object, "startTicks");
  auto exit_code = json::OptionalInt(*object, "exitCode");
  auto signal = json::OptionalInt(*object, "signal");
  auto out_of_memory = json::OptionalBool(*object, "outOfMemory");
  if (!pid || !start_ticks || !exit_code || !signal || !out_of_memory || !*pid || !*start_ticks) {
    return InternalError("exit record: pid and startTicks must be integers");
  }
  ExitRecord record;
  record.pid = **pid;
  record.start_ticks = **start_ticks;
  if (*exit_code) record.exit_code = static_cast<int>(**exit_code);
  if (*signal) record.signal = static_cast<int>(**signal);
  record.out_of_memory = out_of_memory->value_or(false);
  return record;
}

ExitRecord ExitRecordFromWaitStatus(int64_t pid, int64_t start_ticks, int wait_status) {
  ExitRecord record;
  record.pid = pid;
  record.start_ticks = start_ticks;
  if (WIFEXITED(wait_status)) record.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) record.signal = WTERMSIG(wait_status);
  return record;
}

}  // namespace puddle::local
