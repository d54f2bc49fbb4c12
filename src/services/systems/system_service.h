// SystemService: creating systems and accepting requests to change them.
//
// Each call is one transaction: it checks access and the lifecycle table,
// writes the operation and its job together, and wakes a worker after commit.
// Workers (workers/jobs/) carry the job out. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "model/system.h"
#include "providers/provider.h"
#include "queue/dispatcher.h"
#include "services/activity/activity_tracker.h"
#include "services/actor.h"
#include "storage/store.h"

namespace puddle {

struct CreateSystemRequest {
  std::string name;
  std::string product;
  std::string version;
  std::string system_type;
  std::optional<int64_t> idle_timeout_minutes;
};

// A system with what is derived from it for display.
struct SystemView {
  System system;
  double cost = 0;
  // The product's address at its provider: null for local systems, which
  // are reached only through the access proxy.
  std::optional<std::string> direct_url;
  // https://<id>.<systemsDomain>[:port]<basePath> while running and ready,
  // when system origins work.
  std::optional<std::string> url;
  // Set when the service has an ActivityTracker (SetActivityTracker).
  std::optional<SystemActivity> activity;
};

// Providers by kind, owned by the app.
using ProviderMap = std::map<std::string, Provider*>;

class SystemService {
 public:
  SystemService(Store& store, Dispatcher& dispatcher, const ProviderMap& providers,
                const Config& config, std::string token_secret);

  Result<SystemView> Create(const Actor& actor, const CreateSystemRequest& request);
  Result<SystemView> Get(const Actor& actor, const std::string& id);
  Result<Page<SystemView>> List(const Actor& actor, const SystemFilter& filter,
                                const PageRequest& page);

  // Accepts start, stop, reboot, restart-product, delete, fail or keep-alive.
  // Repeating an action already under way returns the system unchanged.
  Result<SystemView> Request(const Actor& actor, const std::string& id, OperationAction action,
                             std::optional<int64_t> keep_alive_minutes = std::nullopt);

  // Requests made by Puddle itself (reconcile, idle); `requested_by` is null.
  Status RequestAutomatic(const std::string& id, OperationAction action, OperationReason reason,
                          const std::string& message);

  // RequestAutomatic that first runs `recheck` in the same transaction, with
  // the system's row locked, so a keep-alive or a status change committed
  // meanwhile is seen. `recheck` returns the operation's reason and the
  // event's message, or nullopt to request nothing. Returns whether the
  // request was made.
  struct AutomaticRequest {
    OperationReason reason;
    std::string message;
  };
  using AutomaticRecheck =
      std::function<Result<std::optional<AutomaticRequest>>(Tx& tx, const System& system)>;
  Result<bool> RequestAutomaticIf(const std::string& id, OperationAction action,
                                  const AutomaticRecheck& recheck);

  // Makes views carry the system's activity. Call before serving requests.
  void SetActivityTracker(const ActivityTracker* tracker) { activity_ = tracker; }

  // Records that a running system's machine is gone: a process that exited
  // makes it failed (reason process-exit), a host restart stopped (reason
  // host-restart). Does nothing when the system left running meanwhile.
  Status RecordMachineGone(const std::string& id, const Observation& observed);

  // Records a change of product health seen by the reconcile loop.
  Status RecordProductHealth(const std::string& id, ProductStatus health);

  Result<std::vector<Event>> Events(const Actor& actor, const std::string& id,
                                    int64_t after_sequence, int limit);
  Result<Page<Operation>> Operations(const Actor& actor, const std::string& id,
                                     const PageRequest& page);
  Result<std::vector<CostSession>> Sessions(const Actor& actor, const std::string& id);
  Result<std::string> Logs(const Actor& actor, const std::string& id, int lines);

  // The product token of a system, unsealed; for workers and the proxy only.
  Result<std::string> ProductToken(const System& system) const;

 private:
  // Loads a system the actor may see; other users' systems are not found.
  Result<System> LoadVisible(Tx& tx, const Actor& actor, const std::string& id);
  // LoadVisible that locks the row for a read-check-write (Tx::GetSystemForUpdate).
  Result<System> LoadVisibleForUpdate(Tx& tx, const Actor& actor, const std::string& id);
  Result<SystemView> View(Tx& tx, const Actor& actor, System system);
  // Writes the operation, the status change, the event and the job.
  // REQUIRES: `system` was read with GetSystemForUpdate in `tx`, or inserted there.
  Status Enqueue(Tx& tx, System& system, OperationAction action, OperationReason reason,
                 const std::optional<std::string>& requested_by, const std::string& message,
                 std::string& job_id);

  Store& store_;
  Dispatcher& dispatcher_;
  const ProviderMap& providers_;
  const Config& config_;
  std::string token_secret_;
  const ActivityTracker* activity_ = nullptr;
};

// The job kind that carries out `action` ("system.start").
std::string JobKindFor(OperationAction action);

}  // namespace puddle
