// LocalProvider: each system is a supervised, detached process group on this
// host, run as an unprivileged uid.
//
// A system's uid (and gid) is uid_min + the owner's number, so one user's
// systems share a uid and other users' systems cannot read their files. Its
// "disk" is <data_dir>/systems/<id>/ (0700, owned by that uid; home/ is the
// product's HOME and {dataDir}); Stop keeps it and Delete removes it. Each
// launch starts `<supervisor_executable> supervise --system-id=<id>` (see
// supervisor.h) through spawn.h, which drops root before exec. The supervisor
// runs the product with a clean environment that carries
// PUDDLE_INSTALLATION_ID and PUDDLE_SYSTEM_ID. The product token travels only
// in that environment.
//
// Processes outlive Puddle. The provider state (provider_state.h) names the
// product and supervisor by pid and start time plus the host's boot id, so a
// restarted Puddle recognises them, and the provider's own record under
// <data_dir>/local/ lets Create adopt a process the core has no state for.
// The provider only ever signals processes whose real uid is in
// (uid_min, uid_max] and that belong to the system by process group,
// environment tag or cgroup.
//
// Thread-safe: calls for different systems may run at once; the core never
// runs two calls for one system at once.
//
// Network: with network_isolation (and root, ip and iptables present) each
// system runs in its own network namespace (network.h), its product listens
// on the namespace's address, and Poll reports that address. Otherwise
// products listen on listen_address in the host's namespace. A system keeps
// the mode it was started in until it stops.
//
// Limitations: see the local provider section of docs/known-gaps.md (no
// disk quota, cgroup v1 only, IPv4 only inside namespaces).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "providers/local/network.h"
#include "providers/local/process_table.h"
#include "providers/local/provider_state.h"
#include "providers/local/system_files.h"
#include "providers/provider.h"

namespace puddle {

struct LocalProviderOptions {
  // Puddle's data directory; the provider makes it 0711 (others may traverse
  // it to reach their home directories, not list it).
  std::string data_dir;
  // Tags every process (PUDDLE_INSTALLATION_ID) and names the cgroups.
  std::string installation_id;
  // Systems run as uid_min + owner_number, which must not exceed uid_max.
  int64_t uid_min = 200000;
  int64_t uid_max = 265535;
  // Seconds between SIGTERM and SIGKILL on stop.
  int64_t stop_grace_seconds = 10;
  // Address products listen on; it must differ from the one Puddle serves on.
  std::string listen_address = "127.0.0.2";
  int port_min = 20000;
  int port_max = 29999;
  // Absolute path of the puddle binary, which must be executable by others.
  std::string supervisor_executable;
  // Maximum number of processes (threads included) of one system: the pids cgroup
  // limit, or RLIMIT_NPROC for the whole uid where no pids cgroup exists.
  int64_t pids_max = 4096;
  // Creates per-system cgroups where the host has cgroup v1 controllers.
  bool use_cgroups = true;
  // Seconds Create and Start wait for the supervisor to exec the product.
  int64_t launch_timeout_seconds = 30;
  // Runs each system in its own network namespace where the host allows it
  // (root, ip and iptables present); else products listen on listen_address.
  bool network_isolation = false;
  // The namespaces' pool, allow list and denied destinations; its
  // installation_id is taken from the field above.
  local::NetworkOptions network;
  // Gives each system its own empty /tmp and /dev/shm: tmpfs mounts in a
  // mount namespace of its own. Off when data_dir lies under /tmp, where the
  // mount would hide the system's own directory.
  bool private_tmp = false;
  // Injected for tests.
  std::string boot_id_path = "/proc/sys/kernel/random/boot_id";
  std::string gpu_device_path = "/dev/nvidia0";
  const Clock* clock = nullptr;  // SystemClock when null
};

class LocalProvider final : public Provider {
 public:
  explicit LocalProvider(LocalProviderOptions options);

  // Fails when [uid_min, uid_max] is empty, includes root, or overlaps a uid
  // in `passwd_path` or a gid in `group_path` (the systems' gids equal their
  // uids). Start-up calls it before creating the provider.
  static Status CheckUidRange(int64_t uid_min, int64_t uid_max,
                              const std::string& passwd_path = "/etc/passwd",
                              const std::string& group_path = "/etc/group");

  // Creates the provider's directories and checks that Puddle runs as root,
  // the options (installation id, supervisor path, port range, uid range)
  // and that products can reach their directories. Create and Start call it
  // too; start-up may call it to fail early.
  Status Prepare();

  // True when systems started from now on get their own network namespaces.
  bool NetworkIsolated() const { return network_isolated_; }
  // Why network_isolation is off although requested; empty otherwise.
  const std::string& NetworkFallbackReason() const { return network_fallback_reason_; }
  // Installs the iptables rules of the namespaces (once per process; Create
  // and Start call it too) and logs uplinks whose forwarding is off. Ok when
  // isolation is off.
  Status PrepareNetwork();

  std::string_view Kind() const override { return "local"; }
  Status CheckSystemType(const SystemType& type) const override;
  Result<std::string> Create(const LaunchRequest& request) override;
  Result<std::string> Start(const LaunchRequest& request, std::string_view state) override;
  Result<std::string> Stop(std::string_view system_id, std::string_view state) override;
  Result<std::string> Reboot(const LaunchRequest& request, std::string_view state) override;
  Status Delete(std::string_view system_id, std::string_view state) override;
  Result<Observation> Poll(std::string_view system_id, std::string_view state) override;
  // Returns kStopped when `state` records the system as not running.
  ProductStatus CheckProduct(const LaunchRequest& request, std::string_view state) override;
  Result<std::string> GetFromProduct(const LaunchRequest& request, std::string_view state,
                                     std::string_view path) override;
  // Sums utime, stime, cutime and cstime of the system's live processes, so
  // time of a process that exited counts once its parent has reaped it.
  Result<std::optional<double>> CpuSeconds(std::string_view system_id,
                                           std::string_view state) override;
  Result<std::string> ReadLogs(std::string_view system_id, std::string_view state,
                               int lines) override;
  // One resource per (system, process group) found carrying this
  // installation's tag, resource_id "pid:<process group id>", and one per
  // network namespace of this installation, "netns:<name>".
  Result<std::vector<OwnedResource>> ListOwned() override;

 private:
  // The product's URL for `path` under its base path, or the status that
  // forbids sending it the token (kStopped, kStarting, kUnhealthy).
  std::variant<std::string, ProductStatus> ProductUrl(const LaunchRequest& request,
                                                      std::string_view state,
                                                      std::string_view path);
  // ProductUrl for a system in its own network namespace.
  std::variant<std::string, ProductStatus> NamespacedProductUrl(std::string_view system_id,
                                                                const local::LocalState& state,
                                                                const std::string& url) const;
  Result<int64_t> UidFor(const LaunchRequest& request) const;
  Status ValidateRequest(const LaunchRequest& request) const;
  Result<std::string> LaunchOrAdopt(const LaunchRequest& request, const local::LocalState& state);
  // Returns the state of a live launch of the system to adopt, if any;
  // `known_port` comes from the core's state when the record lacks one.
  std::optional<local::LocalState> FindRunning(std::string_view system_id, int64_t uid,
                                               const std::optional<local::SystemRecord>& record,
                                               const local::LocalState& known);
  Result<local::LocalState> Launch(const LaunchRequest& request, int64_t uid,
                                   std::optional<int> preferred_port,
                                   std::optional<int> preferred_subnet);
  struct Slot {
    int port = 0;
    int subnet = -1;  // -1 without network isolation
  };
  // Reserves a port and, with isolation, a subnet that no other running or
  // launching system of this installation holds.
  Result<Slot> ReserveSlot(std::string_view system_id, int64_t uid, std::optional<int> preferred,
                           std::optional<int> preferred_subnet);
  Status StopProcesses(std::string_view system_id, const local::LocalState& state,
                       const std::optional<local::SystemRecord>& record);
  // Processes of the system: in its process group or cgroups, tagged with
  // its id, or inside `network_namespace`.
  std::vector<local::ProcessStat> FindSystemProcesses(
      std::string_view system_id, int64_t uid, int64_t pgid, const std::vector<std::string>& cgroups,
      const std::optional<local::NamespaceId>& network_namespace = std::nullopt) const;
  // Removes the system's network namespace and veth, if any.
  void DestroyNetwork(std::string_view system_id);
  bool WaitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& done) const;
  Result<Observation> ObserveExit(std::string_view system_id, const local::LocalState& state);

  std::optional<local::SystemRecord> LoadRecord(std::string_view system_id) const;
  Status SaveRecord(std::string_view system_id, const local::SystemRecord& record) const;
  bool UidInRange(int64_t uid) const { return uid > options_.uid_min && uid <= options_.uid_max; }
  std::string CgroupGroupName() const;
  // "<address>:<port>" the product serves on: the namespace address in
  // `state`, else listen_address.
  std::string Address(const local::LocalState& state) const;

  LocalProviderOptions options_;
  local::Layout layout_;
  std::unique_ptr<SystemClock> own_clock_;
  const Clock* clock_;
  // Serializes port allocation among this process's threads; an flock on
  // <data_dir>/local/ports.lock does so among processes.
  std::mutex port_mutex_;
  local::SystemNetworks networks_;
  bool network_isolated_ = false;
  std::string network_fallback_reason_;
  std::mutex network_mutex_;
  bool network_rules_installed_ = false;
};

}  // namespace puddle
