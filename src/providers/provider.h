// Provider: the contract every compute back end fulfils (local processes, EC2, ...).
//
// The core owns the lifecycle; a provider only acts on the machine and reports
// what it observes. Every call is blocking and may be slow (seconds for a
// process, minutes for a VM): callers run them on worker threads, never on
// HTTP threads. Implementations must be thread-safe for calls on different
// systems; the core never runs two calls for the same system at once.
//
// Provider state is an opaque JSON string that the provider returns from
// Create/Start/Reboot, the core stores with the system, and hands back on
// every later call, so a restarted Puddle reattaches to what still runs. It
// must never hold a secret, because admins see it in the API.
//
// Every call is idempotent per system id: calling Create twice for one system
// (a job retried after a crash) adopts what the first call made.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/catalog.h"
#include "model/system.h"

namespace puddle {

// The inputs a provider needs to create or start one system.
struct LaunchRequest {
  std::string installation_id;
  std::string system_id;
  std::string owner_id;
  std::string owner_username;
  // Stable positive number of the owner, unique per Puddle user. The local
  // provider runs the owner's systems as uid (and gid) uid_min + owner_number.
  int64_t owner_number = 0;
  SystemType system_type;
  Image image;
  // The product's own credential (Jupyter's token). Plain text; a provider
  // passes it to the product only through its environment, never argv or logs.
  std::string product_token;
};

// The reason a machine that should run is gone.
enum class GoneReason { kNone, kProcessExited, kHostRestarted, kVanished };

// The provider's observation of one system right now.
struct Observation {
  VmStatus vm_status = VmStatus::kUnknown;
  // host:port the product serves on, empty when not running.
  std::string address;
  GoneReason gone = GoneReason::kNone;
  // For kProcessExited: "exit status 1" or "killed by signal 9".
  std::string exit_description;
  // Last lines of the product's output, for events when it died.
  std::string last_log_lines;
  // Latest time the machine is known to have been running, when the provider
  // can tell: for kHostRestarted, the moment the host booted again.
  std::optional<TimePoint> gone_at;
};

// A resource the provider found carrying this installation's tag.
struct OwnedResource {
  std::string resource_id;  // "pid:1234", "i-0abc..."
  std::string system_id;    // from its tag; empty when untagged
};

class Provider {
 public:
  virtual ~Provider() = default;

  // "local", "fake", "aws".
  virtual std::string_view Kind() const = 0;

  // Fails with validation_failed on field "systemType" when this provider
  // cannot run `type` (the local provider: gpus > 0 on a host without GPUs).
  virtual Status CheckSystemType(const SystemType& type) const = 0;

  // Provisions the system's disk and starts it. Returns the provider state.
  virtual Result<std::string> Create(const LaunchRequest& request) = 0;

  // Starts a stopped system on the disk Create made. Returns the new state.
  virtual Result<std::string> Start(const LaunchRequest& request, std::string_view state) = 0;

  // Stops the machine and keeps its disk. Returns the new state.
  virtual Result<std::string> Stop(std::string_view system_id, std::string_view state) = 0;

  // Restarts the machine. Returns the new state.
  virtual Result<std::string> Reboot(const LaunchRequest& request, std::string_view state) = 0;

  // Stops the machine and removes its disk. Succeeds when nothing is left.
  virtual Status Delete(std::string_view system_id, std::string_view state) = 0;

  // Observes the machine without changing it.
  virtual Result<Observation> Poll(std::string_view system_id, std::string_view state) = 0;

  // Asks the product its health (for Jupyter, GET <basePath>api/status with its
  // token). Returns kReady, kStarting (not listening yet) or kUnhealthy.
  virtual ProductStatus CheckProduct(const LaunchRequest& request, std::string_view state) = 0;

  // Returns up to `lines` last lines of the product's output.
  virtual Result<std::string> ReadLogs(std::string_view system_id, std::string_view state,
                                       int lines) = 0;

  // Lists every resource tagged with this installation, for the orphan sweeper.
  virtual Result<std::vector<OwnedResource>> ListOwned() = 0;

  // The hourly price the provider has for `type`, if any.
  virtual std::optional<double> HourlyPrice(const SystemType& type) const { return std::nullopt; }

  // GETs <basePath><path> from the running product with its credential (for
  // Jupyter, "Authorization: token <t>") through the same safeguards as
  // CheckProduct, and returns the body of a 200 answer, cut at 1 MiB. Fails
  // with kUnavailable when the product cannot be asked or answers otherwise.
  // The idle loop reads Jupyter's api/kernels with it.
  virtual Result<std::string> GetFromProduct(const LaunchRequest& request,
                                             std::string_view state, std::string_view path) {
    return MakeError(ErrorCode::kUnavailable,
                     std::string(Kind()) + " provider cannot query products");
  }

  // Total CPU time, in seconds, the system's processes have used; it only
  // grows while the machine runs. nullopt when the provider cannot measure it.
  virtual Result<std::optional<double>> CpuSeconds(std::string_view system_id,
                                                   std::string_view state) {
    return std::optional<double>();
  }
};

}  // namespace puddle
