#include "providers/local/provider_state.h"

#include <boost/json.hpp>

#include "common/json.h"

namespace puddle::local {
namespace {

constexpr int64_t kStateVersion = 1;

boost::json::object StateObject(const LocalState& state) {
  boost::json::object object;
  object["version"] = kStateVersion;
  object["running"] = state.running;
  if (state.running) {
    object["pid"] = state.pid;
    object["processStartTime"] = state.process_start_time;
    object["startTicks"] = state.start_ticks;
    object["supervisorPid"] = state.supervisor_pid;
    object["supervisorStartTicks"] = state.supervisor_start_ticks;
    object["bootId"] = state.boot_id;
  }
  if (state.port != 0) object["port"] = state.port;
  if (state.uid != 0) object["uid"] = state.uid;
  if (state.subnet >= 0) object["subnet"] = state.subnet;
  if (!state.address.empty()) object["address"] = state.address;
  return object;
}

Result<LocalState> StateFromObject(const boost::json::object& object) {
  auto version = json::OptionalInt(object, "version");
  auto running = json::OptionalBool(object, "running");
  auto pid = json::OptionalInt(object, "pid");
  auto start_time = json::OptionalString(object, "processStartTime");
  auto start_ticks = json::OptionalInt(object, "startTicks");
  auto supervisor_pid = json::OptionalInt(object, "supervisorPid");
  auto supervisor_ticks = json::OptionalInt(object, "supervisorStartTicks");
  auto port = json::OptionalInt(object, "port");
  auto uid = json::OptionalInt(object, "uid");
  auto boot_id = json::OptionalString(object, "bootId");
  auto subnet = json::OptionalInt(object, "subnet");
  auto address = json::OptionalString(object, "address");
  if (!subnet || !address) return InternalError("local provider state has a field of the wrong type");
  if (!version || !running || !pid || !start_time || !start_ticks || !supervisor_pid ||
      !supervisor_ticks || !port || !uid || !boot_id) {
    return InternalError("local provider state has a field of the wrong type");
  }

  if (version->value_or(0) != kStateVersion) {
    return InternalError("local provider state has version " +
                         std::to_string(version->value_or(0)) + "; this Puddle reads version " +
                         std::to_string(kStateVersion));
  }

  LocalState state;
  state.running = running->value_or(false);
  state.pid = pid->value_or(0);
  state.process_start_time = start_time->value_or("");
  state.start_ticks = start_ticks->value_or(0);
  state.supervisor_pid = supervisor_pid->value_or(0);
  state.supervisor_start_ticks = supervisor_ticks->value_or(0);
  state.port = static_cast<int>(port->value_or(0));
  state.uid = uid->value_or(0);
  state.boot_id = boot_id->value_or("");
  state.subnet = static_cast<int>(subnet->value_or(-1));
  state.address = address->value_or("");
  if (state.running && (state.pid <= 0 || state.supervisor_pid <= 0 || state.boot_id.empty())) {
    return InternalError("local provider state is marked running but is missing pid, supervisorPid or bootId");
  }
  return state;
}

std::string_view PhaseName(RecordPhase phase) {
  switch (phase) {
    case RecordPhase::kLaunching: return "launching";
    case RecordPhase::kRunning: return "running";
    case RecordPhase::kStopped: return "stopped";
  }
  return "stopped";
}

}  // namespace

std::string SerializeState(const LocalState& state) { return json::Serialize(StateObject(state)); }

Result<LocalState> ParseState(std::string_view text) {
  if (text.empty()) return LocalState{};
  auto object = json::ParseObject(text);
  if (!object) return InternalError("local provider state is not a JSON object");
  return StateFromObject(*object);
}

std::string SerializeRecord(const SystemRecord& record) {
  boost::json::object object = StateObject(record.state);
  object["phase"] = PhaseName(record.phase);
  boost::json::array cgroups;
  for (const auto& directory : record.cgroups) cgroups.emplace_back(directory);
  object["cgroups"] = std::move(cgroups);
  object["updatedAt"] = FormatTime(record.updated_at);
  return json::Serialize(object);
}

Result<SystemRecord> ParseRecord(std::string_view text) {
  auto object = json::ParseObject(text);
  if (!object) return InternalError("local provider record is not a JSON object");
  auto state = StateFromObject(*object);
  if (!state) return tl::unexpected(state.error());
  SystemRecord record;
  record.state = std::move(*state);

  auto phase = json::OptionalString(*object, "phase");
  auto updated_at = json::OptionalString(*object, "updatedAt");
  if (!phase || !updated_at) return InternalError("local provider record has a malformed field");
  if (*phase == "launching") record.phase = RecordPhase::kLaunching;
  if (*phase == "running") record.phase = RecordPhase::kRunning;
  auto time = ParseTime(updated_at->value_or(""));
  record.updated_at = time.value_or(TimePoint{});
  if (auto it = object->find("cgroups"); it != object->end() && it->value().is_array()) {
    for (const auto& item : it->value().as_array()) {
      if (item.is_string()) record.cgroups.emplace_back(item.as_string());
    }
  }
  return record;
}

}  // namespace puddle::local
