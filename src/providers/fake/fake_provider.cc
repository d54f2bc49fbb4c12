#include "providers/fake/fake_provider.h"

#include <thread>

#include <boost/json.hpp>

namespace puddle {
namespace {

size_t CallIndex(FakeCall call) { return static_cast<size_t>(call); }

}  // namespace

FakeProvider::FakeProvider(FakeProviderOptions options) : options_(std::move(options)) {}

Status FakeProvider::CheckSystemType(const SystemType&) const { return Ok(); }

void FakeProvider::Enter(FakeCall call, bool does_work) {
  {
    std::lock_guard lock(mutex_);
    ++calls_[CallIndex(call)];
  }
  if (options_.fast) return;
  std::chrono::milliseconds delay{0};
  if (options_.failure == FakeFailure::kSlow) {
    delay = options_.slow_delay;
  } else if (does_work) {
    delay = options_.call_delay;
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
}

Status FakeProvider::CheckStartFailure(const std::string& system_id, std::string_view call_name) {
  if (options_.failure != FakeFailure::kFailsToStart) return Ok();
  std::string what = "fake provider: " + std::string(call_name) + " system " + system_id;
  if (options_.start_failures == FakeProviderOptions::kAlwaysFail) {
    return MakeError(ErrorCode::kInternal,
                     what + " failed: the machine image is broken (set to fail every start)");
  }
  int& failed = start_failures_[system_id];
  if (failed >= options_.start_failures) return Ok();
  ++failed;
  return MakeError(ErrorCode::kUnavailable,
                   what + " failed: no capacity (transient failure " + std::to_string(failed) +
                       " of " + std::to_string(options_.start_failures) + ")");
}

Result<FakeProvider::State> FakeProvider::ParseState(std::string_view text) {
  State state;
  if (text.empty()) return state;  // the system never had a machine
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  const boost::json::object* object = value.if_object();
  if (error || object == nullptr) {
    return InternalError("fake provider state is not a JSON object: " + std::string(text));
  }
  const auto* machine = object->if_contains("machine");
  const auto* running = object->if_contains("running");
  const auto* port = object->if_contains("port");
  const auto* boot = object->if_contains("boot");
  if (machine == nullptr || !machine->is_string() || running == nullptr || !running->is_bool() ||
      port == nullptr || !port->is_int64() || boot == nullptr || !boot->is_int64()) {
    return InternalError("fake provider state lacks machine, running, port or boot: " +
                         std::string(text));
  }
  state.machine = std::string(machine->as_string());
  state.running = running->as_bool();
  state.port = static_cast<int>(port->as_int64());
  state.boot = static_cast<int>(boot->as_int64());
  return state;
}

std::string FakeProvider::SerializeState(const FakeMachine& machine) const {
  boost::json::object state;
  state["version"] = 1;
  state["machine"] = machine.id;
  state["running"] = machine.running && !machine.exited;
  state["port"] = machine.port;
  state["boot"] = machine.boot;
  return boost::json::serialize(state);
}

void FakeProvider::Boot(FakeMachine& machine) {
  machine.running = true;
  machine.exited = false;
  machine.boot = boot_;
  machine.health_checks = 0;
  machine.log_lines.push_back("fake product listening on " + options_.listen_host + ":" +
                              std::to_string(machine.port));
}

Result<std::string> FakeProvider::Create(const LaunchRequest& request) {
  Enter(FakeCall::kCreate, true);
  std::lock_guard lock(mutex_);
  PUDDLE_RETURN_IF_ERROR(CheckStartFailure(request.system_id, "create"));

  auto existing = machines_.find(request.system_id);
  if (existing != machines_.end()) {
    FakeMachine& machine = existing->second;
    bool up = machine.running && !machine.exited && machine.boot == boot_;
    if (!up) Boot(machine);
    return SerializeState(machine);
  }

  ++machines_created_;
  FakeMachine machine;
  machine.id = "m" + std::to_string(machines_created_);
  machine.system_id = request.system_id;
  machine.port = options_.port_base + machines_created_ - 1;
  Boot(machine);
  std::string state = SerializeState(machine);
  machines_.emplace(request.system_id, std::move(machine));
  return state;
}

Result<std::string> FakeProvider::Start(const LaunchRequest& request, std::string_view state) {
  Enter(FakeCall::kStart, true);
  std::lock_guard lock(mutex_);
  PUDDLE_RETURN_IF_ERROR(CheckStartFailure(request.system_id, "start"));
  PUDDLE_ASSIGN_OR_RETURN(State parsed, ParseState(state));

  auto found = machines_.find(request.system_id);
  if (found == machines_.end() || found->second.id != parsed.machine) {
    return InternalError("fake provider: start system " + request.system_id + ": machine \"" +
                         parsed.machine + "\" no longer exists; delete the system");
  }
  FakeMachine& machine = found->second;
  bool up = machine.running && !machine.exited && machine.boot == boot_;
  if (!up) Boot(machine);
  return SerializeState(machine);
}

Result<std::string> FakeProvider::Stop(std::string_view system_id, std::string_view state) {
  Enter(FakeCall::kStop, true);
  std::lock_guard lock(mutex_);
  PUDDLE_ASSIGN_OR_RETURN(State parsed, ParseState(state));

  auto found = machines_.find(system_id);
  if (found == machines_.end() || found->second.id != parsed.machine) {
    // Nothing runs: report the state's machine as stopped.
    FakeMachine gone;
    gone.id = parsed.machine;
    gone.port = parsed.port;
    gone.boot = parsed.boot;
    return SerializeState(gone);
  }
  FakeMachine& machine = found->second;
  if (machine.running) machine.log_lines.push_back("fake product stopped");
  machine.running = false;
  return SerializeState(machine);
}

Result<std::string> FakeProvider::Reboot(const LaunchRequest& request, std::string_view state) {
  Enter(FakeCall::kReboot, true);
  std::lock_guard lock(mutex_);
  PUDDLE_ASSIGN_OR_RETURN(State parsed, ParseState(state));

  auto found = machines_.find(request.system_id);
  if (found == machines_.end() || found->second.id != parsed.machine) {
    return InternalError("fake provider: reboot system " + request.system_id + ": machine \"" +
                         parsed.machine + "\" no longer exists; delete the system");
  }
  Boot(found->second);
  return SerializeState(found->second);
}

Status FakeProvider::Delete(std::string_view system_id, std::string_view state) {
  Enter(FakeCall::kDelete, true);
  std::lock_guard lock(mutex_);
  auto found = machines_.find(system_id);
  if (found != machines_.end()) machines_.erase(found);
  return Ok();
}

Observation FakeProvider::Observe(const std::string& system_id, const State& state) const {
  Observation observation;
  if (state.machine.empty()) {
    observation.vm_status = VmStatus::kNone;
    return observation;
  }
  observation.vm_status = VmStatus::kStopped;
  if (!state.running) return observation;
  if (state.boot != boot_) {
    observation.gone = GoneReason::kHostRestarted;
    observation.gone_at = booted_at_;
    return observation;
  }

  auto found = machines_.find(system_id);
  if (found == machines_.end() || found->second.id != state.machine) {
    observation.vm_status = VmStatus::kTerminated;
    observation.gone = GoneReason::kVanished;
    observation.exit_description = "machine \"" + state.machine + "\" no longer exists";
    return observation;
  }
  const FakeMachine& machine = found->second;
  if (machine.exited || !machine.running) {
    observation.gone = GoneReason::kProcessExited;
    observation.exit_description =
        machine.exited ? options_.exit_description : "was stopped outside Puddle";
    observation.last_log_lines = machine.exited ? options_.last_log_lines : "";
    return observation;
  }
  observation.vm_status = VmStatus::kRunning;
  observation.address = options_.listen_host + ":" + std::to_string(machine.port);
  return observation;
}

Result<Observation> FakeProvider::Poll(std::string_view system_id, std::string_view state) {
  Enter(FakeCall::kPoll, false);
  std::lock_guard lock(mutex_);
  std::string id(system_id);
  if (options_.failure == FakeFailure::kFlakyPoll) {
    int poll = ++polls_[id];
    if (poll % 2 == 0) {
      return MakeError(ErrorCode::kUnavailable, "fake provider: poll " + std::to_string(poll) +
                                                    " of system " + id +
                                                    " failed (every second poll fails)");
    }
  }
  PUDDLE_ASSIGN_OR_RETURN(State parsed, ParseState(state));
  return Observe(id, parsed);
}

ProductStatus FakeProvider::CheckProduct(const LaunchRequest& request, std::string_view state) {
  Enter(FakeCall::kCheckProduct, false);
  std::lock_guard lock(mutex_);
  auto parsed = ParseState(state);
  if (!parsed || !parsed->running || parsed->boot != boot_) return ProductStatus::kStopped;
  auto found = machines_.find(request.system_id);
  if (found == machines_.end() || found->second.id != parsed->machine) {
    return ProductStatus::kStopped;
  }
  FakeMachine& machine = found->second;
  if (!machine.running || machine.exited) return ProductStatus::kStopped;

  ++machine.health_checks;
  if (options_.failure == FakeFailure::kNeverReady) return ProductStatus::kStarting;
  int starting_checks = options_.fast ? 0 : options_.starting_checks;
  if (machine.health_checks <= starting_checks) return ProductStatus::kStarting;

  if (options_.failure == FakeFailure::kDiesAfterStart) {
    // This check still succeeds, and the product exits right after it.
    machine.exited = true;
    machine.running = false;
    machine.log_lines.push_back(options_.last_log_lines);
  }
  return ProductStatus::kReady;
}

Result<std::string> FakeProvider::GetFromProduct(const LaunchRequest& request,
                                                 std::string_view state, std::string_view path) {
  std::lock_guard lock(mutex_);
  auto parsed = ParseState(state);
  auto machine = machines_.find(request.system_id);
  bool running = parsed && parsed->running && parsed->boot == boot_ &&
                 machine != machines_.end() && machine->second.running;
  if (!running) {
    return MakeError(ErrorCode::kUnavailable,
                     "system " + request.system_id + ": the product is not running");
  }
  auto answer = product_answers_.find(request.system_id + " " + std::string(path));
  if (answer == product_answers_.end()) {
    return MakeError(ErrorCode::kUnavailable, "GET " + std::string(path) + " answered HTTP 404");
  }
  return answer->second;
}

Result<std::optional<double>> FakeProvider::CpuSeconds(std::string_view system_id,
                                                       std::string_view) {
  std::lock_guard lock(mutex_);
  auto found = cpu_seconds_.find(system_id);
  if (found == cpu_seconds_.end()) return std::optional<double>();
  return std::optional<double>(found->second);
}

void FakeProvider::SetProductAnswer(std::string_view system_id, std::string_view path,
                                    std::string body) {
  std::lock_guard lock(mutex_);
  product_answers_[std::string(system_id) + " " + std::string(path)] = std::move(body);
}

void FakeProvider::ForgetProductAnswer(std::string_view system_id, std::string_view path) {
  std::lock_guard lock(mutex_);
  product_answers_.erase(std::string(system_id) + " " + std::string(path));
}

void FakeProvider::SetCpuSeconds(std::string_view system_id, double seconds) {
  std::lock_guard lock(mutex_);
  cpu_seconds_[std::string(system_id)] = seconds;
}

Result<std::string> FakeProvider::ReadLogs(std::string_view system_id, std::string_view,
                                           int lines) {
  Enter(FakeCall::kReadLogs, false);
  std::lock_guard lock(mutex_);
  auto found = machines_.find(system_id);
  if (found == machines_.end() || lines <= 0) return std::string();
  const auto& all = found->second.log_lines;
  size_t first = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::string text;
  for (size_t i = first; i < all.size(); ++i) text += all[i] + "\n";
  return text;
}

Result<std::vector<OwnedResource>> FakeProvider::ListOwned() {
  Enter(FakeCall::kListOwned, false);
  std::lock_guard lock(mutex_);
  std::vector<OwnedResource> owned;
  for (const auto& [system_id, machine] : machines_) {
    owned.push_back({"fake:" + machine.id, system_id});
  }
  return owned;
}

std::optional<double> FakeProvider::HourlyPrice(const SystemType&) const {
  return options_.hourly_price;
}

void FakeProvider::SimulateHostRestart(std::optional<TimePoint> booted_at) {
  std::lock_guard lock(mutex_);
  ++boot_;
  booted_at_ = booted_at;
  for (auto& [system_id, machine] : machines_) {
    if (machine.running) machine.log_lines.push_back("host restarted");
    machine.running = false;
  }
}

int FakeProvider::CallCount(FakeCall call) const {
  std::lock_guard lock(mutex_);
  return calls_[CallIndex(call)];
}

int FakeProvider::MachinesCreated() const {
  std::lock_guard lock(mutex_);
  return machines_created_;
}

size_t FakeProvider::MachineCount() const {
  std::lock_guard lock(mutex_);
  return machines_.size();
}

std::optional<FakeMachine> FakeProvider::FindMachine(std::string_view system_id) const {
  std::lock_guard lock(mutex_);
  auto found = machines_.find(system_id);
  if (found == machines_.end()) return std::nullopt;
  return found->second;
}

}  // namespace puddle
