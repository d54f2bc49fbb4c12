#include "providers/local/local_provider.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <utility>
#include <variant>

#include "common/log.h"
#include "providers/local/cgroups.h"
#include "providers/local/cpu_time.h"
#include "providers/local/health_check.h"
#include "providers/local/launch_plan.h"
#include "providers/local/ports.h"
#include "providers/local/process_table.h"
#include "providers/local/spawn.h"
#include "providers/local/supervisor_protocol.h"
#include "providers/local/unique_fd.h"

namespace puddle {

using local::LocalState;
using local::ProcessStat;
using local::RecordPhase;
using local::SystemRecord;

namespace {

constexpr int kLastLogLines = 20;
constexpr int kMaxLogLines = 10000;
constexpr size_t kMaxExitRecordBytes = 64 << 10;
// How long Poll waits for a live supervisor to record the product's exit.
constexpr auto kExitRecordWait = std::chrono::seconds(3);
// How long Stop keeps sending SIGKILL before it reports processes it could
// not end (a process in uninterruptible sleep ignores SIGKILL for a while).
constexpr auto kKillWait = std::chrono::seconds(10);
constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr auto kHealthTimeout = std::chrono::seconds(3);
// Largest answer GetFromProduct returns; api/kernels is a few KiB.
constexpr size_t kMaxProductAnswerBytes = 1 << 20;
// A record left in "launching" by a crashed Puddle stops reserving its port
// after this long.
constexpr auto kLaunchingRecordLifetime = std::chrono::minutes(5);

constexpr std::string_view kInstallationVariable = "PUDDLE_INSTALLATION_ID";
constexpr std::string_view kSystemVariable = "PUDDLE_SYSTEM_ID";

// System ids become directory and cgroup names, so anything but the API's id
// form (lowercase letters, digits, inner hyphens, at most 40) is rejected.
bool IsValidSystemId(std::string_view id) {
  if (id.empty() || id.size() > 40 || id.front() == '-' || id.back() == '-') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Status CheckSystemId(std::string_view id) {
  if (IsValidSystemId(id)) return Ok();
  return InternalError("invalid system id \"" + std::string(id) +
                       "\": expected lowercase letters, digits and inner hyphens");
}

std::string BasePath(std::string_view system_id, const LaunchSpec& spec) {
  // With "strip" the proxy removes /systems/<id> before forwarding, so the
  // product itself is served at the root.
  if (spec.base_path_mode == "strip") return "/";
  return "/systems/" + std::string(system_id) + "/";
}

// Reads every id in the first field (passwd: uid is field 3, group: gid is
// field 3) of a colon-separated database.
Result<std::vector<std::pair<std::string, int64_t>>> ReadIds(const std::string& path) {
  std::ifstream file(path);
  if (!file) return InternalError("read " + path + ": " + std::strerror(errno));
  std::vector<std::pair<std::string, int64_t>> ids;
  std::string line;
  while (std::getline(file, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    size_t third = line.find(':', second + 1);
    if (first == std::string::npos || second == std::string::npos || third == std::string::npos) {
      continue;
    }
    try {
      ids.emplace_back(line.substr(0, first), std::stoll(line.substr(second + 1, third - second - 1)));
    } catch (const std::exception&) {
      continue;
    }
  }
  return ids;
}

std::string JoinPids(const std::vector<ProcessStat>& processes) {
  std::string text;
  for (const auto& process : processes) {
    if (!text.empty()) text += ", ";
    text += std::to_string(process.pid);
  }
  return text;
}

local::NetworkOptions NetworkOptionsFor(const LocalProviderOptions& options) {
  local::NetworkOptions network = options.network;
  network.installation_id = options.installation_id;
  return network;
}

// True when `path` is /tmp or lies below it, after resolving symlinks.
bool IsUnderTmp(const std::string& path) {
  char resolved[PATH_MAX];
  std::string real = realpath(path.c_str(), resolved) != nullptr ? resolved : path;
  return real == "/tmp" || real.starts_with("/tmp/");
}

}  // namespace

LocalProvider::LocalProvider(LocalProviderOptions options)
    : options_(std::move(options)),
      layout_(options_.data_dir),
      networks_(NetworkOptionsFor(options_)) {
  if (options_.clock == nullptr) own_clock_ = std::make_unique<SystemClock>();
  clock_ = options_.clock != nullptr ? options_.clock : own_clock_.get();
  if (options_.network_isolation) {
    auto available = networks_.CheckAvailable();
    network_isolated_ = available.has_value();
    if (!available) network_fallback_reason_ = available.error().message;
  }
  if (options_.private_tmp && IsUnderTmp(options_.data_dir)) {
    log::Warning("systems share the host's /tmp because the data directory lies under /tmp, "
                 "which a private /tmp would hide; move the data directory elsewhere",
                 {{"data_dir", options_.data_dir}});
  }
}

Status LocalProvider::PrepareNetwork() {
  if (!network_isolated_) return Ok();
  std::lock_guard<std::mutex> lock(network_mutex_);
  if (network_rules_installed_) return Ok();
  if (auto installed = networks_.InstallRules(); !installed) {
    return tl::unexpected(installed.error().WithContext(
        "install the iptables rules of the systems' network namespaces"));
  }
  network_rules_installed_ = true;
  for (const auto& uplink : networks_.UplinksWithoutForwarding()) {
    log::Warning("forwarding is off on the interface that leads to providers.local.network.allow "
                 "destinations, so systems cannot reach them; enable it with sysctl -w "
                 "net.ipv4.conf." + uplink + ".forwarding=1",
                 {{"interface", uplink}});
  }
  return Ok();
}

Status LocalProvider::CheckUidRange(int64_t uid_min, int64_t uid_max,
                                    const std::string& passwd_path,
                                    const std::string& group_path) {
  if (uid_min < 1 || uid_max <= uid_min || uid_max > 0x7FFFFFFF) {
    return MakeError(ErrorCode::kValidationFailed,
                     "providers.local.uidRange " + std::to_string(uid_min) + "-" +
                         std::to_string(uid_max) +
                         " is invalid: it must be an increasing range of positive uids below 2^31",
                     "providers.local.uidRange");
  }
  const std::pair<const std::string*, std::string_view> databases[] = {
      {&passwd_path, "uid"}, {&group_path, "gid"}};
  for (const auto& [path, kind] : databases) {
    auto ids = ReadIds(*path);
    if (!ids) return tl::unexpected(ids.error());
    for (const auto& [name, id] : *ids) {
      if (id >= uid_min && id <= uid_max) {
        return MakeError(ErrorCode::kValidationFailed,
                         "providers.local.uidRange " + std::to_string(uid_min) + "-" +
                             std::to_string(uid_max) + " contains " + std::string(kind) + " " +
                             std::to_string(id) + " of \"" + name + "\" in " + *path +
                             "; choose a range no account or group uses",
                         "providers.local.uidRange");
      }
    }
  }
  return Ok();
}

Status LocalProvider::Prepare() {
  if (geteuid() != 0) {
    return MakeError(ErrorCode::kUnavailable,
                     "the local provider must run as root to start systems under the "
                     "unprivileged uids of providers.local.uidRange; start Puddle as root");
  }
  if (options_.installation_id.empty()) return InternalError("local provider: installation id is empty");
  if (options_.supervisor_executable.empty() || options_.supervisor_executable.front() != '/') {
    return InternalError("local provider: supervisor executable \"" +
                         options_.supervisor_executable + "\" must be an absolute path");
  }
  if (options_.port_min < 1 || options_.port_max > 65535 || options_.port_min > options_.port_max) {
    return InternalError("local provider: port range " + std::to_string(options_.port_min) + "-" +
                         std::to_string(options_.port_max) + " is invalid");
  }
  if (auto status = CheckUidRange(options_.uid_min, options_.uid_max); !status) return status;
  return local::EnsureProviderDirectories(layout_);
}

Status LocalProvider::CheckSystemType(const SystemType& type) const {
  if (type.gpus > 0 && access(options_.gpu_device_path.c_str(), F_OK) != 0) {
    return MakeError(ErrorCode::kValidationFailed,
                     "system type " + type.id + " needs " + std::to_string(type.gpus) +
                         " GPU(s), but this host has none (" + options_.gpu_device_path +
                         " is missing); choose a system type without GPUs",
                     "systemType");
  }
  return Ok();
}

Result<int64_t> LocalProvider::UidFor(const LaunchRequest& request) const {
  if (request.owner_number < 1) {
    return InternalError("owner number " + std::to_string(request.owner_number) + " of user " +
                         request.owner_username + " is not positive");
  }
  int64_t uid = options_.uid_min + request.owner_number;
  if (uid > options_.uid_max) {
    return MakeError(ErrorCode::kUnavailable,
                     "user " + request.owner_username + " would run as uid " + std::to_string(uid) +
                         ", outside providers.local.uidRange " + std::to_string(options_.uid_min) +
                         "-" + std::to_string(options_.uid_max) + "; widen the range");
  }
  return uid;
}

Status LocalProvider::ValidateRequest(const LaunchRequest& request) const {
  if (auto status = CheckSystemId(request.system_id); !status) return status;
  // Expands once with stand-in values so a bad launch spec fails before any
  // port, directory or process exists.
  local::PlaceholderValues values{"1", "a", "/", "/", request.system_id, "t"};
  local::BaseEnvironment base{"/", "u", options_.installation_id, request.system_id};
  auto plan = local::BuildLaunchPlan(request.image.launch, values, base);
  if (!plan) return tl::unexpected(plan.error());
  return Ok();
}

Result<std::string> LocalProvider::Create(const LaunchRequest& request) {
  return LaunchOrAdopt(request, LocalState{});
}

Result<std::string> LocalProvider::Start(const LaunchRequest& request, std::string_view state) {
  auto parsed = local::ParseState(state);
  if (!parsed) return tl::unexpected(parsed.error());
  return LaunchOrAdopt(request, *parsed);
}

Result<std::string> LocalProvider::Reboot(const LaunchRequest& request, std::string_view state) {
  auto stopped = Stop(request.system_id, state);
  if (!stopped) return tl::unexpected(stopped.error().WithContext("reboot"));
  return Start(request, *stopped);
}

Result<std::string> LocalProvider::LaunchOrAdopt(const LaunchRequest& request,
                                                 const LocalState& state) {
  if (auto status = Prepare(); !status) return tl::unexpected(status.error());
  if (auto status = ValidateRequest(request); !status) return tl::unexpected(status.error());
  auto uid = UidFor(request);
  if (!uid) return tl::unexpected(uid.error());

  // A retried Create or Start adopts what an earlier attempt started.
  auto record = LoadRecord(request.system_id);
  if (auto running = FindRunning(request.system_id, *uid, record, state)) {
    return local::SerializeState(*running);
  }

  if (auto status = local::EnsureSystemDirectory(layout_, request.system_id,
                                                 static_cast<uid_t>(*uid),
                                                 static_cast<gid_t>(*uid));
      !status) {
    return tl::unexpected(status.error());
  }
  std::optional<int> preferred_port;
  if (state.port != 0) preferred_port = state.port;
  if (!preferred_port && record && record->state.port != 0) preferred_port = record->state.port;
  std::optional<int> preferred_subnet;
  if (state.subnet >= 0) preferred_subnet = state.subnet;
  if (!preferred_subnet && record && record->state.subnet >= 0) {
    preferred_subnet = record->state.subnet;
  }
  auto launched = Launch(request, *uid, preferred_port, preferred_subnet);
  if (!launched) return tl::unexpected(launched.error());
  return local::SerializeState(*launched);
}

std::optional<LocalState> LocalProvider::FindRunning(std::string_view system_id, int64_t uid,
                                                     const std::optional<SystemRecord>& record,
                                                     const LocalState& known) {
  auto boot_id = local::ReadBootId(options_.boot_id_path);
  if (!boot_id) return std::nullopt;

  // The record names the processes of the last launch on this boot.
  if (record && record->phase == RecordPhase::kRunning && record->state.boot_id == *boot_id &&
      record->state.uid == uid && local::IsProcessAlive(record->state.pid, record->state.start_ticks)) {
    log::Info("local system adopted", {{"system_id", std::string(system_id)},
                                       {"pid", std::to_string(record->state.pid)}});
    return record->state;
  }

  // Without a usable record, the processes are found by their tag: the
  // supervisor leads its session, and the product is its child in its group.
  auto processes = FindSystemProcesses(system_id, uid, 0, {});
  if (processes.empty()) return std::nullopt;
  const ProcessStat* supervisor = nullptr;
  const ProcessStat* product = nullptr;
  for (const auto& process : processes) {
    auto arguments = local::ReadProcessArguments(process.pid);
    if (process.pid == process.sid && arguments.size() > 1 &&
        arguments[1] == local::kSupervisorSubcommand) {
      supervisor = &process;
    }
  }
  for (const auto& process : processes) {
    if (supervisor && process.ppid == supervisor->pid && process.pgid == supervisor->pid) {
      product = &process;
    }
  }
  int port = record && record->state.port != 0 ? record->state.port : known.port;
  // A process in its own network namespace serves on that namespace's
  // address, which only a record or the core's state names.
  const LocalState& named = record && !record->state.address.empty() ? record->state : known;
  auto supervisor_namespace = supervisor ? local::ProcessNamespace(supervisor->pid) : std::nullopt;
  bool in_own_namespace = supervisor_namespace && supervisor_namespace != local::ProcessNamespace(getpid());
  bool address_known = !in_own_namespace || !named.address.empty();
  if (supervisor && product && port != 0 && address_known) {
    LocalState state;
    state.running = true;
    state.pid = product->pid;
    state.start_ticks = product->start_ticks;
    state.process_start_time = local::FormatProcessStartTime(product->start_ticks);
    state.supervisor_pid = supervisor->pid;
    state.supervisor_start_ticks = supervisor->start_ticks;
    state.port = port;
    state.uid = uid;
    state.boot_id = *boot_id;
    if (in_own_namespace) {
      state.subnet = named.subnet;
      state.address = named.address;
    }
    SystemRecord adopted = record.value_or(SystemRecord{});
    adopted.phase = RecordPhase::kRunning;
    adopted.state = state;
    adopted.cgroups = local::FindSystemCgroupsOf(supervisor->pid, CgroupGroupName(),
                                                 std::string(system_id));
    adopted.updated_at = clock_->Now();
    if (auto status = SaveRecord(system_id, adopted); !status) {
      log::Warning("local system record not saved", {{"system_id", std::string(system_id)},
                                                     {"error", status.error().message}});
    }
    log::Info("local system adopted", {{"system_id", std::string(system_id)},
                                       {"pid", std::to_string(state.pid)}});
    return state;
  }

  // Processes of this system that cannot be adopted (a launch interrupted
  // half-way) are ended, so the launch that follows is the only instance.
  log::Warning("ending processes of a local system that cannot be adopted",
               {{"system_id", std::string(system_id)}, {"pid", JoinPids(processes)}});
  LocalState orphaned;
  orphaned.uid = uid;
  if (auto status = StopProcesses(system_id, orphaned, record); !status) {
    log::Warning("local system processes did not end", {{"system_id", std::string(system_id)},
                                                        {"error", status.error().message}});
  }
  return std::nullopt;
}

Result<LocalState> LocalProvider::Launch(const LaunchRequest& request, int64_t uid,
                                         std::optional<int> preferred_port,
                                         std::optional<int> preferred_subnet) {
  const std::string& id = request.system_id;
  if (auto status = PrepareNetwork(); !status) {
    return tl::unexpected(status.error().WithContext("start system " + id));
  }
  auto slot = ReserveSlot(id, uid, preferred_port, preferred_subnet);
  if (!slot) return tl::unexpected(slot.error());
  auto port = std::optional<int>(slot->port);

  SystemRecord record;
  record.phase = RecordPhase::kStopped;
  record.state.port = *port;
  record.state.uid = uid;
  record.state.subnet = slot->subnet;
  auto fail = [&](const Error& error, const std::vector<std::string>& cgroups) {
    if (slot->subnet >= 0) DestroyNetwork(id);
    // A supervisor that reported a failure may not have exited yet, and a
    // cgroup with a process in it cannot be removed. The record keeps the
    // directories for Stop and Delete in case the wait is not enough.
    WaitUntil(kExitRecordWait, [&] { return local::ListCgroupProcesses(cgroups).empty(); });
    record.cgroups = local::RemoveSystemCgroups(cgroups);
    record.updated_at = clock_->Now();
    (void)SaveRecord(id, record);
    return tl::unexpected(error.WithContext("start system " + id));
  };

  // Limits: cgroups where the host has them, else the per-uid process limit.
  local::SystemCgroups cgroups;
  if (options_.use_cgroups) {
    local::CgroupLimits limits;
    limits.memory_bytes = request.system_type.memory_mib * 1024 * 1024;
    limits.cpus = request.system_type.cpus;
    limits.pids_max = options_.pids_max;
    std::vector<std::string> warnings;
    cgroups = local::CreateSystemCgroups(CgroupGroupName(), id, limits, &warnings);
    for (const auto& warning : warnings) {
      log::Warning("system limit not enforced", {{"system_id", id}, {"error", warning}});
    }
  }

  // The system's own network namespace, made anew for each launch.
  std::string listen_address = options_.listen_address;
  if (slot->subnet >= 0) {
    if (auto created = networks_.Create(id, slot->subnet); !created) {
      return fail(created.error(), cgroups.directories);
    }
    listen_address = networks_.AddressesOf(slot->subnet).system;
  }

  std::string home = layout_.HomeDir(id);
  local::PlaceholderValues values{std::to_string(*port), listen_address,
                                  BasePath(id, request.image.launch), home, id,
                                  request.product_token};
  local::BaseEnvironment base{home, request.owner_username, options_.installation_id, id};
  auto plan = local::BuildLaunchPlan(request.image.launch, values, base);
  if (!plan) return fail(plan.error(), cgroups.directories);

  local::SupervisorSpec spec{layout_.SystemDir(id), home, plan->argv, plan->environment,
                             cgroups.memory};
  local::SpawnRequest spawn;
  spawn.executable = options_.supervisor_executable;
  spawn.argv = {"puddle", std::string(local::kSupervisorSubcommand), "--system-id=" + id};
  spawn.environment = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                       std::string(kInstallationVariable) + "=" + options_.installation_id,
                       std::string(kSystemVariable) + "=" + id};
  spawn.uid = static_cast<uid_t>(uid);
  spawn.gid = static_cast<gid_t>(uid);
  if (slot->subnet >= 0) spawn.network_namespace_path = networks_.NamespacePath(id);
  if (options_.private_tmp && !IsUnderTmp(options_.data_dir)) {
    spawn.private_tmpfs_paths = {"/tmp", "/dev/shm"};
    // tmpfs pages count against the memory cgroup of the process that
    // writes them, so the system's memory limit bounds them where enforced.
    int64_t size_mib = request.system_type.memory_mib > 0 ? request.system_type.memory_mib : 1024;
    spawn.tmpfs_options = "mode=1777,size=" + std::to_string(size_mib) + "m";
  }
  for (const auto& directory : cgroups.directories) {
    spawn.cgroup_procs_files.push_back(directory + "/cgroup.procs");
  }
  if (!cgroups.pids_limited) spawn.process_limit = static_cast<rlim_t>(options_.pids_max);
  spawn.spec = local::SerializeSupervisorSpec(spec);
  spawn.timeout = std::chrono::seconds(options_.launch_timeout_seconds);
  auto spawned = local::SpawnSupervisor(spawn);
  if (!spawned) return fail(spawned.error(), cgroups.directories);

  auto boot_id = local::ReadBootId(options_.boot_id_path);
  if (!boot_id) return fail(boot_id.error(), cgroups.directories);
  LocalState state;
  state.running = true;
  state.pid = spawned->product_pid;
  state.supervisor_pid = spawned->supervisor_pid;
  // A product that already exited has no stat left; Poll then finds its
  // exit record by pid.
  if (auto stat = local::ReadProcessStat(state.pid)) state.start_ticks = stat->start_ticks;
  if (auto stat = local::ReadProcessStat(state.supervisor_pid)) {
    state.supervisor_start_ticks = stat->start_ticks;
  }
  state.process_start_time = local::FormatProcessStartTime(state.start_ticks);
  state.port = *port;
  state.uid = uid;
  state.boot_id = *boot_id;
  if (slot->subnet >= 0) {
    state.subnet = slot->subnet;
    state.address = listen_address;
  }

  record.phase = RecordPhase::kRunning;
  record.state = state;
  record.cgroups = cgroups.directories;
  record.updated_at = clock_->Now();
  if (auto status = SaveRecord(id, record); !status) {
    log::Warning("local system record not saved", {{"system_id", id},
                                                   {"error", status.error().message}});
  }
  log::Info("local system started", {{"system_id", id},
                                     {"pid", std::to_string(state.pid)},
                                     {"address", Address(state)}});
  return state;
}

Result<LocalProvider::Slot> LocalProvider::ReserveSlot(std::string_view system_id, int64_t uid,
                                                       std::optional<int> preferred,
                                                       std::optional<int> preferred_subnet) {
  std::lock_guard<std::mutex> lock(port_mutex_);
  local::UniqueFd lock_file(
      open(layout_.PortLockPath().c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock_file.Valid() || flock(lock_file.Get(), LOCK_EX) != 0) {
    return InternalError("lock " + layout_.PortLockPath() + ": " + std::strerror(errno));
  }

  // Ports of other systems that run, or are being launched, stay theirs.
  auto boot_id = local::ReadBootId(options_.boot_id_path);
  std::set<int> reserved;
  std::set<int> reserved_subnets;
  std::unique_ptr<DIR, int (*)(DIR*)> directory(opendir(layout_.RecordsDir().c_str()), closedir);
  while (dirent* entry = directory ? readdir(directory.get()) : nullptr) {
    std::string name = entry->d_name;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    std::string other = name.substr(0, name.size() - 5);
    if (other == system_id) continue;
    auto record = LoadRecord(other);
    if (!record || record->state.port == 0) continue;
    bool launching = record->phase == RecordPhase::kLaunching &&
                     clock_->Now() - record->updated_at < kLaunchingRecordLifetime;
    bool running = record->phase == RecordPhase::kRunning && boot_id &&
                   record->state.boot_id == *boot_id &&
                   (local::IsProcessAlive(record->state.pid, record->state.start_ticks) ||
                    local::IsProcessAlive(record->state.supervisor_pid,
                                          record->state.supervisor_start_ticks));
    if (launching || running) {
      reserved.insert(record->state.port);
      if (record->state.subnet >= 0) reserved_subnets.insert(record->state.subnet);
    }
  }

  // In its own namespace a product binds where nothing else listens, so the
  // port needs no bind test; it stays unique so systems can be told apart.
  Slot slot;
  const std::string probe_address = network_isolated_ ? "" : options_.listen_address;
  auto port = local::AllocatePort(probe_address, options_.port_min, options_.port_max, reserved,
                                  preferred);
  if (!port) return tl::unexpected(port.error());
  slot.port = *port;
  if (network_isolated_) {
    // Addresses on this host's interfaces are taken, except those of the
    // system's own leftover veth, which its launch removes.
    for (int subnet : networks_.SubnetsInUse(networks_.HostInterface(system_id))) {
      reserved_subnets.insert(subnet);
    }
    int count = networks_.SubnetCount();
    auto usable = [&](int subnet) {
      return subnet >= 0 && subnet < count && !reserved_subnets.contains(subnet);
    };
    if (preferred_subnet && usable(*preferred_subnet)) {
      slot.subnet = *preferred_subnet;
    } else {
      for (int subnet = 0; subnet < count && slot.subnet < 0; ++subnet) {
        if (usable(subnet)) slot.subnet = subnet;
      }
    }
    if (slot.subnet < 0) {
      return MakeError(ErrorCode::kUnavailable,
                       "no free /30 subnet left in providers.local.network.cidr " +
                           options_.network.cidr + "; stop some systems or widen the range");
    }
  }
  SystemRecord record;
  record.phase = RecordPhase::kLaunching;
  record.state.port = slot.port;
  record.state.subnet = slot.subnet;
  record.state.uid = uid;
  record.updated_at = clock_->Now();
  if (auto status = SaveRecord(system_id, record); !status) return tl::unexpected(status.error());
  return slot;
}

std::vector<ProcessStat> LocalProvider::FindSystemProcesses(
    std::string_view system_id, int64_t uid, int64_t pgid, const std::vector<std::string>& cgroups,
    const std::optional<local::NamespaceId>& network_namespace) const {
  std::vector<int64_t> cgroup_list = local::ListCgroupProcesses(cgroups);
  std::set<int64_t> in_cgroup(cgroup_list.begin(), cgroup_list.end());
  std::vector<ProcessStat> found;
  for (int64_t pid : local::ListProcessIds()) {
    auto process_uid = local::ReadProcessUid(pid);
    if (!process_uid || !UidInRange(*process_uid)) continue;
    if (uid != 0 && *process_uid != uid) continue;
    auto stat = local::ReadProcessStat(pid);
    if (!stat || stat->state == 'Z' || stat->state == 'X') continue;
    bool belongs = (pgid > 0 && stat->pgid == pgid) || in_cgroup.contains(pid);
    if (!belongs && network_namespace) belongs = local::ProcessNamespace(pid) == network_namespace;
    if (!belongs) {
      belongs = local::ReadProcessEnvironmentValue(pid, kInstallationVariable) ==
                    options_.installation_id &&
                local::ReadProcessEnvironmentValue(pid, kSystemVariable) == system_id;
    }
    if (belongs) found.push_back(*stat);
  }
  return found;
}

bool LocalProvider::WaitUntil(std::chrono::milliseconds timeout,
                              const std::function<bool()>& done) const {
  TimePoint deadline = clock_->Now() + timeout;
  while (true) {
    if (done()) return true;
    if (clock_->Now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

Status LocalProvider::StopProcesses(std::string_view system_id, const LocalState& state,
                                    const std::optional<SystemRecord>& record) {
  int64_t uid = state.uid != 0 ? state.uid : (record ? record->state.uid : 0);
  if (uid != 0 && !UidInRange(uid)) {
    return InternalError("system " + std::string(system_id) + " names uid " + std::to_string(uid) +
                         ", outside providers.local.uidRange; not signalling it");
  }
  std::vector<std::string> cgroups = record ? record->cgroups : std::vector<std::string>{};

  // The process group is the supervisor's pid, valid only on the boot it
  // was recorded on.
  auto boot_id = local::ReadBootId(options_.boot_id_path);
  LocalState group = state;
  if (!group.running && record && record->phase == RecordPhase::kRunning) group = record->state;
  bool same_boot = boot_id && group.running && group.boot_id == *boot_id;
  int64_t pgid = same_boot ? group.supervisor_pid : 0;
  // Whatever runs in the system's namespace is ended too, so a stopped
  // system keeps nothing running there.
  auto network_namespace = networks_.NamespaceOf(system_id);
  auto members = [&] {
    return FindSystemProcesses(system_id, uid, pgid, cgroups, network_namespace);
  };
  if (members().empty()) return Ok();

  // SIGTERM goes to the whole group at once while its leader, the
  // supervisor, still lives, because then the group id cannot have been
  // reused. Without a live leader it goes to each process found.
  if (pgid > 0 && local::IsProcessAlive(pgid, group.supervisor_start_ticks)) {
    kill(static_cast<pid_t>(-pgid), SIGTERM);
    // Members outside the group (found in the system's cgroups or network
    // namespace) get their own SIGTERM.
    for (const auto& process : members()) {
      if (process.pgid != pgid) local::SignalProcess(process.pid, process.start_ticks, SIGTERM);
    }
  } else {
    for (const auto& process : members()) {
      local::SignalProcess(process.pid, process.start_ticks, SIGTERM);
    }
  }
  auto grace = std::chrono::seconds(options_.stop_grace_seconds);
  if (WaitUntil(grace, [&] { return members().empty(); })) return Ok();

  log::Warning("local system ignored SIGTERM; sending SIGKILL",
               {{"system_id", std::string(system_id)}, {"pid", JoinPids(members())}});
  bool ended = WaitUntil(kKillWait, [&] {
    auto left = members();
    for (const auto& process : left) {
      local::SignalProcess(process.pid, process.start_ticks, SIGKILL);
    }
    return left.empty();
  });
  if (!ended) {
    return InternalError("processes " + JoinPids(members()) + " of system " +
                         std::string(system_id) + " still run after SIGKILL");
  }
  return Ok();
}

Result<std::string> LocalProvider::Stop(std::string_view system_id, std::string_view state) {
  if (auto status = CheckSystemId(system_id); !status) return tl::unexpected(status.error());
  auto parsed = local::ParseState(state);
  if (!parsed) return tl::unexpected(parsed.error());
  auto record = LoadRecord(system_id);

  if (auto status = StopProcesses(system_id, *parsed, record); !status) {
    return tl::unexpected(status.error().WithContext("stop system " + std::string(system_id)));
  }
  std::vector<std::string> remaining;
  if (record) remaining = local::RemoveSystemCgroups(record->cgroups);
  DestroyNetwork(system_id);

  LocalState stopped;
  stopped.port = parsed->port != 0 ? parsed->port : (record ? record->state.port : 0);
  stopped.uid = parsed->uid != 0 ? parsed->uid : (record ? record->state.uid : 0);
  stopped.subnet = parsed->subnet >= 0 ? parsed->subnet : (record ? record->state.subnet : -1);
  if (record) {
    SystemRecord updated;
    updated.phase = RecordPhase::kStopped;
    updated.state = stopped;
    updated.cgroups = remaining;
    updated.updated_at = clock_->Now();
    if (auto status = SaveRecord(system_id, updated); !status) {
      log::Warning("local system record not saved", {{"system_id", std::string(system_id)},
                                                     {"error", status.error().message}});
    }
  }
  log::Info("local system stopped", {{"system_id", std::string(system_id)}});
  return local::SerializeState(stopped);
}

Status LocalProvider::Delete(std::string_view system_id, std::string_view state) {
  if (auto status = CheckSystemId(system_id); !status) return status;
  auto parsed = local::ParseState(state);
  LocalState known = parsed ? *parsed : LocalState{};
  auto record = LoadRecord(system_id);

  if (auto status = StopProcesses(system_id, known, record); !status) {
    return tl::unexpected(status.error().WithContext("delete system " + std::string(system_id)));
  }
  if (record) {
    for (const auto& directory : local::RemoveSystemCgroups(record->cgroups)) {
      log::Warning("cgroup not removed", {{"system_id", std::string(system_id)},
                                          {"path", directory}});
    }
  }
  DestroyNetwork(system_id);
  if (auto status = local::RemoveDirectoryTree(layout_.SystemDir(system_id)); !status) {
    return tl::unexpected(status.error().WithContext("delete system " + std::string(system_id)));
  }
  std::string record_path = layout_.RecordPath(system_id);
  if (unlink(record_path.c_str()) != 0 && errno != ENOENT) {
    return InternalError("delete system " + std::string(system_id) + ": remove " + record_path +
                         ": " + std::strerror(errno));
  }
  log::Info("local system deleted", {{"system_id", std::string(system_id)}});
  return Ok();
}

Result<Observation> LocalProvider::Poll(std::string_view system_id, std::string_view state) {
  if (auto status = CheckSystemId(system_id); !status) return tl::unexpected(status.error());
  auto parsed = local::ParseState(state);
  if (!parsed) return tl::unexpected(parsed.error());
  Observation observation;
  if (!parsed->running) {
    observation.vm_status = VmStatus::kStopped;
    return observation;
  }

  auto boot_id = local::ReadBootId(options_.boot_id_path);
  if (!boot_id) return tl::unexpected(boot_id.error());
  if (parsed->boot_id != *boot_id) {
    observation.vm_status = VmStatus::kStopped;
    observation.gone = GoneReason::kHostRestarted;
    // The product ran until the host went down, shortly before it booted again.
    if (auto boot = local::ReadBootTimeSeconds()) {
      observation.gone_at = FromUnixMillis(*boot * 1000);
    }
    return observation;
  }
  if (local::IsProcessAlive(parsed->pid, parsed->start_ticks) &&
      local::ReadProcessUid(parsed->pid) == static_cast<uid_t>(parsed->uid)) {
    observation.vm_status = VmStatus::kRunning;
    observation.address = Address(*parsed);
    return observation;
  }
  return ObserveExit(system_id, *parsed);
}

Result<Observation> LocalProvider::ObserveExit(std::string_view system_id,
                                               const LocalState& state) {
  Observation observation;
  observation.vm_status = VmStatus::kStopped;
  std::string directory = layout_.SystemDir(system_id);
  if (access(directory.c_str(), F_OK) != 0) {
    observation.gone = GoneReason::kVanished;
    observation.exit_description = "the system's directory " + directory + " is gone";
    return observation;
  }

  // The supervisor writes the record right after reaping the product; a
  // Poll that comes first waits for it while the supervisor lives.
  auto uid = static_cast<uid_t>(state.uid);
  std::optional<local::ExitRecord> exit_record;
  WaitUntil(kExitRecordWait, [&] {
    auto text = local::ReadSystemFile(directory, local::kExitRecordFileName, uid,
                                      kMaxExitRecordBytes);
    if (text && *text) {
      auto parsed = local::ParseExitRecord(**text);
      bool same_process = parsed && parsed->pid == state.pid &&
                          (state.start_ticks == 0 || parsed->start_ticks == state.start_ticks);
      if (same_process) exit_record = *parsed;
    }
    return exit_record.has_value() ||
           !local::IsProcessAlive(state.supervisor_pid, state.supervisor_start_ticks);
  });

  observation.gone = GoneReason::kProcessExited;
  observation.exit_description = exit_record
                                     ? exit_record->Description()
                                     : "ended without a recorded exit status (its supervisor "
                                       "was killed)";
  auto lines = local::ReadLastLines(directory, local::kLogFileName, uid, kLastLogLines);
  if (lines) observation.last_log_lines = *lines;
  return observation;
}

std::variant<std::string, ProductStatus> LocalProvider::ProductUrl(const LaunchRequest& request,
                                                                   std::string_view state,
                                                                   std::string_view path) {
  auto parsed = local::ParseState(state);
  if (!parsed || !parsed->running) return ProductStatus::kStopped;
  std::string url = "http://" + Address(*parsed) +
                    BasePath(request.system_id, request.image.launch) + std::string(path);
  if (!parsed->address.empty()) return NamespacedProductUrl(request.system_id, *parsed, url);
  // The token goes only to a listener of the system's own uid: another user's
  // process may have taken the port before the product bound it.
  if (!local::ListenerOwnedBy(options_.listen_address, static_cast<int>(parsed->port),
                              static_cast<uid_t>(parsed->uid))) {
    bool port_free = local::IsPortFree(options_.listen_address, static_cast<int>(parsed->port));
    return port_free ? ProductStatus::kStarting : ProductStatus::kUnhealthy;
  }
  return url;
}

std::variant<std::string, ProductStatus> LocalProvider::NamespacedProductUrl(
    std::string_view system_id, const LocalState& state, const std::string& url) const {
  // Only processes inside the system's namespace can listen on its address.
  // Its socket table is read through the supervisor, which is checked to be
  // alive and in that namespace before and after the read, so a reused pid
  // cannot show another namespace's table.
  auto network_namespace = networks_.NamespaceOf(system_id);
  auto supervisor_inside = [&] {
    return network_namespace &&
           local::IsProcessAlive(state.supervisor_pid, state.supervisor_start_ticks) &&
           local::ProcessNamespace(state.supervisor_pid) == network_namespace;
  };
  if (!supervisor_inside()) return ProductStatus::kUnhealthy;
  const std::string proc_net = "/proc/" + std::to_string(state.supervisor_pid) + "/net";
  bool owned = local::ListenerOwnedBy(state.address, state.port, static_cast<uid_t>(state.uid),
                                      proc_net);
  bool listening = owned || local::HasListener(state.address, state.port, proc_net);
  if (!supervisor_inside()) return ProductStatus::kUnhealthy;
  if (!owned) return listening ? ProductStatus::kUnhealthy : ProductStatus::kStarting;
  return url;
}

ProductStatus LocalProvider::CheckProduct(const LaunchRequest& request, std::string_view state) {
  auto url = ProductUrl(request, state, request.image.launch.health_path);
  if (auto* status = std::get_if<ProductStatus>(&url)) return *status;
  return local::CheckHttpHealth(std::get<std::string>(url), request.product_token, kHealthTimeout);
}

Result<std::string> LocalProvider::GetFromProduct(const LaunchRequest& request,
                                                  std::string_view state, std::string_view path) {
  auto url = ProductUrl(request, state, path);
  if (auto* status = std::get_if<ProductStatus>(&url)) {
    return MakeError(ErrorCode::kUnavailable,
                     "system " + request.system_id + ": the product is " +
                         std::string(ProductStatusName(*status)) + ", so it cannot be asked");
  }
  return local::GetWithToken(std::get<std::string>(url), request.product_token, kHealthTimeout,
                             kMaxProductAnswerBytes);
}

Result<std::optional<double>> LocalProvider::CpuSeconds(std::string_view system_id,
                                                        std::string_view state) {
  if (auto status = CheckSystemId(system_id); !status) return tl::unexpected(status.error());
  auto parsed = local::ParseState(state);
  if (!parsed || !parsed->running) return std::optional<double>();
  auto record = LoadRecord(system_id);
  std::vector<std::string> cgroups = record ? record->cgroups : std::vector<std::string>{};
  // The process group is the supervisor's pid while the supervisor lives.
  int64_t pgid = local::IsProcessAlive(parsed->supervisor_pid, parsed->supervisor_start_ticks)
                     ? parsed->supervisor_pid
                     : 0;
  std::vector<int64_t> pids;
  for (const auto& process : FindSystemProcesses(system_id, parsed->uid, pgid, cgroups)) {
    pids.push_back(process.pid);
  }
  return std::optional<double>(local::SumCpuSeconds(pids));
}

Result<std::string> LocalProvider::ReadLogs(std::string_view system_id, std::string_view state,
                                            int lines) {
  if (auto status = CheckSystemId(system_id); !status) return tl::unexpected(status.error());
  auto parsed = local::ParseState(state);
  int64_t uid = parsed ? parsed->uid : 0;
  if (uid == 0) {
    if (auto record = LoadRecord(system_id)) uid = record->state.uid;
  }
  if (!UidInRange(uid)) return std::string();
  return local::ReadLastLines(layout_.SystemDir(system_id), local::kLogFileName,
                              static_cast<uid_t>(uid), std::clamp(lines, 0, kMaxLogLines));
}

Result<std::vector<OwnedResource>> LocalProvider::ListOwned() {
  std::map<std::pair<std::string, int64_t>, bool> groups;
  for (int64_t pid : local::ListProcessIds()) {
    auto uid = local::ReadProcessUid(pid);
    if (!uid || !UidInRange(*uid)) continue;
    if (local::ReadProcessEnvironmentValue(pid, kInstallationVariable) != options_.installation_id) {
      continue;
    }
    auto stat = local::ReadProcessStat(pid);
    if (!stat || stat->state == 'Z') continue;
    std::string system_id = local::ReadProcessEnvironmentValue(pid, kSystemVariable).value_or("");
    groups[{system_id, stat->pgid}] = true;
  }
  std::vector<OwnedResource> resources;
  for (const auto& [key, unused] : groups) {
    resources.push_back({"pid:" + std::to_string(key.second), key.first});
  }
  for (const auto& system_id : networks_.ListSystems()) {
    resources.push_back({"netns:" + networks_.NamespaceName(system_id), system_id});
  }
  return resources;
}

std::optional<SystemRecord> LocalProvider::LoadRecord(std::string_view system_id) const {
  auto text = local::ReadOwnFile(layout_.RecordPath(system_id));
  if (!text || !*text) return std::nullopt;
  auto record = local::ParseRecord(**text);
  if (!record) {
    log::Warning("local system record unreadable", {{"system_id", std::string(system_id)},
                                                    {"error", record.error().message}});
    return std::nullopt;
  }
  return *record;
}

Status LocalProvider::SaveRecord(std::string_view system_id, const SystemRecord& record) const {
  return local::WriteFileAtomically(layout_.RecordPath(system_id), local::SerializeRecord(record),
                                    0600);
}

std::string LocalProvider::CgroupGroupName() const {
  std::string name = "puddle-";
  for (char c : options_.installation_id) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_';
    name += safe ? c : '_';
  }
  return name;
}

std::string LocalProvider::Address(const LocalState& state) const {
  const std::string& address = state.address.empty() ? options_.listen_address : state.address;
  if (address.find(':') != std::string::npos) {
    return "[" + address + "]:" + std::to_string(state.port);
  }
  return address + ":" + std::to_string(state.port);
}

void LocalProvider::DestroyNetwork(std::string_view system_id) {
  if (geteuid() != 0) return;
  if (auto destroyed = networks_.Destroy(system_id); !destroyed) {
    log::Warning("network namespace of a local system not removed",
                 {{"system_id", std::string(system_id)}, {"error", destroyed.error().message}});
  }
}

}  // namespace puddle
