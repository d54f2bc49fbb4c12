// Store: every query Puddle makes, by name, over a sql::Database.
//
// Services open one transaction per request with Read() or Write() and call
// the named queries on the Tx they receive; nothing outside storage/ writes
// SQL. The SQL uses $N parameters and runs on every dialect; only the schema
// migrations are per dialect. Thread-safe; a Tx belongs to one thread for the
// duration of the callback.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "model/activity.h"
#include "model/catalog.h"
#include "model/system.h"
#include "model/system_access.h"
#include "model/user.h"
#include "storage/database.h"

namespace puddle {

// One page of a list; `next_cursor` is empty on the last page.
template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;
};

struct PageRequest {
  int limit = 50;
  std::string cursor;  // opaque, from a previous Page
};

struct SystemFilter {
  std::optional<std::string> owner_id;
  std::optional<SystemStatus> status;  // nullopt lists everything but deleted
  std::optional<std::string> product;
  std::optional<std::string> system_type;
  // "createdAt", "-createdAt" (default), "name", "-name", "status", "-status".
  std::string sort = "-createdAt";
};

// What counts against a user's quota (Tx::CountSystemsOfUser).
struct UserSystemCounts {
  int64_t systems = 0;  // not deleted
  int64_t running = 0;  // accepted create or start, not yet stopped, failed or deleted
};

// A cost session with its owner's username, for reports.
struct UserCostSession {
  CostSession session;
  std::string username;
};

// The named queries, valid inside one transaction.
class Tx {
 public:
  Tx(sql::Connection& connection, const Clock& clock) : db_(connection), clock_(clock) {}

  TimePoint Now() const { return clock_.Now(); }
  // "sqlite" or "postgres", for the named queries that differ by dialect.
  std::string_view Dialect() const { return db_.Dialect(); }

  // Settings: installation-wide values such as the generated token secret.
  Result<std::optional<std::string>> GetSetting(const std::string& key);
  // Stores `value` unless the key exists; returns the value stored.
  Result<std::string> PutSettingIfAbsent(const std::string& key, const std::string& value);

  // Users. InsertUser assigns the user's stable number.
  Result<User> InsertUser(User user);
  Result<std::optional<User>> GetUser(const std::string& id);
  Result<std::optional<User>> GetUserByUsername(const std::string& username);
  Result<int64_t> UserNumber(const std::string& id);
  Result<Page<User>> ListUsers(const PageRequest& page);
  Status UpdateUser(const User& user);
  Result<int64_t> CountEnabledAdmins();

  // API keys and credentials.
  Status InsertApiKey(const ApiKey& key);
  Result<std::optional<ApiKey>> GetApiKey(const std::string& id);
  Result<Page<ApiKey>> ListApiKeys(const std::string& user_id, const PageRequest& page);
  Result<bool> DeleteApiKey(const std::string& id, const std::string& user_id);
  Status DeleteApiKeysOfUser(const std::string& user_id);
  Status InsertCredential(const Credential& credential);
  Result<std::optional<Credential>> GetCredential(const std::string& hash);
  Status TouchCredential(const std::string& hash, TimePoint used_at);
  Status DeleteCredential(const std::string& hash);
  // Deletes every credential of the user except `keep_hash` (may be empty).
  Status DeleteCredentialsOfUser(const std::string& user_id, const std::string& keep_hash);

  // Failed password checks, for rate limiting.
  Status InsertLoginFailure(const std::string& username, const std::string& address);
  Result<int64_t> CountLoginFailures(const std::string& username,
                                     const std::optional<std::string>& address, TimePoint since);
  Result<std::optional<TimePoint>> OldestLoginFailure(const std::string& username,
                                                      const std::optional<std::string>& address,
                                                      TimePoint since);
  Status DeleteLoginFailuresBefore(TimePoint cutoff);

  // Catalog.
  Status InsertProduct(const Product& product);
  Result<std::optional<Product>> GetProduct(const std::string& id);
  Result<std::vector<Product>> ListProducts();
  Status UpdateProductLabel(const std::string& id, const std::string& label);
  Status InsertProductVersion(const std::string& product_id, const ProductVersion& version);
  Result<bool> SetProductVersionEnabled(const std::string& product_id, const std::string& version,
                                        bool enabled);
  Status InsertImage(const Image& image);
  Result<std::optional<Image>> GetImage(const std::string& id);
  Result<std::vector<Image>> ListImages();
  Result<std::vector<Image>> ListImagesOf(const std::string& product_id,
                                          const std::string& version);
  Status UpdateImage(const Image& image);
  Status InsertSystemType(const SystemType& type);
  Result<std::optional<SystemType>> GetSystemType(const std::string& id);
  Result<std::vector<SystemType>> ListSystemTypes();
  Status UpdateSystemType(const SystemType& type);

  // Systems.
  Status InsertSystem(const System& system);
  Result<std::optional<System>> GetSystem(const std::string& id);
  // GetSystem for a read-check-write: on PostgreSQL the row stays locked
  // (SELECT ... FOR UPDATE) until the transaction ends, so a concurrent
  // transaction that does the same waits and then reads this one's write. On
  // SQLite it equals GetSystem, because write transactions already run one at
  // a time. Call it only inside Store::Write.
  Result<std::optional<System>> GetSystemForUpdate(const std::string& id);
  Result<Page<System>> ListSystems(const SystemFilter& filter, const PageRequest& page);
  // Systems in any of `statuses`, for the periodic loops.
  Result<std::vector<System>> ListSystemsByStatus(const std::vector<SystemStatus>& statuses);
  Status UpdateSystem(const System& system);
  // Number of systems per status, deleted ones excluded.
  Result<std::vector<std::pair<SystemStatus, int64_t>>> CountSystemsByStatus();

  // Operations.
  Status InsertOperation(const Operation& operation);
  Result<std::optional<Operation>> GetOperation(const std::string& id);
  Status UpdateOperation(const std::string& id, OperationState state, const std::string& error);
  Result<Page<Operation>> ListOperations(const std::string& system_id, const PageRequest& page);

  // Jobs.
  Status InsertJob(const Job& job);
  Result<std::optional<Job>> GetJob(const std::string& id);
  // Claims the oldest runnable queued job for `worker_id`, or nullopt.
  Result<std::optional<Job>> ClaimJob(const std::string& worker_id);
  Status UpdateJob(const Job& job);
  // Refreshes the heartbeat of jobs `worker_id` still holds.
  Status HeartbeatJobs(const std::vector<std::string>& job_ids, const std::string& worker_id);
  // Returns every running job to the queue (embedded mode start-up, where no
  // other process can hold a claim). Returns how many were requeued.
  Result<int64_t> RequeueRunningJobs();
  // Queued or running jobs of one system.
  Result<std::vector<Job>> ListActiveJobs(const std::string& system_id);
  // Running jobs whose heartbeat is older than `before`.
  Result<std::vector<Job>> ListSilentJobs(TimePoint before);
  Result<std::optional<TimePoint>> NextRunnableJobTime();
  // Ids of the queued jobs that ClaimJob could take now (run_after reached, no
  // running job of the same system) and that were last updated before
  // `updated_before`, in claim order, at most `limit`.
  Result<std::vector<std::string>> ListUnclaimedJobIds(TimePoint updated_before, int limit);

  // Leases: named claims with an expiry that keep a periodic loop running in
  // one process at a time when several processes share the store.
  // Takes lease `name` for `holder`, or renews it when `holder` has it, until
  // Now() + `ttl`. Returns false, changing nothing, while another holder's
  // lease has not expired. Atomic on every dialect.
  Result<bool> TryAcquireLease(const std::string& name, const std::string& holder,
                               std::chrono::milliseconds ttl);
  // Ends `holder`'s lease `name`, so another holder may take it at once. Does
  // nothing when `holder` does not have it.
  Status ReleaseLease(const std::string& name, const std::string& holder);

  // Events.
  Result<Event> InsertEvent(const std::string& system_id,
                            const std::optional<std::string>& operation_id, EventLevel level,
                            const std::string& message);
  // Events after `after_sequence`, ascending, at most `limit`.
  Result<std::vector<Event>> ListEvents(const std::string& system_id, int64_t after_sequence,
                                        int limit);

  // Cost sessions.
  Status OpenCostSession(const System& system);
  Status CloseCostSession(const std::string& system_id, TimePoint end);
  Result<std::vector<CostSession>> ListCostSessions(const std::string& system_id);

  // Costs: quotas, monthly budgets and reports (store_costs.cc).
  // GetUser for a per-user read-check-write (quota and budget checks): on
  // PostgreSQL the user's row stays locked (SELECT ... FOR UPDATE) until the
  // transaction ends, so checks for one user take turns. On SQLite it equals
  // GetUser, because write transactions (BEGIN IMMEDIATE) run one at a time.
  // Call it only inside Store::Write.
  Result<std::optional<User>> GetUserForUpdate(const std::string& id);
  // The user's systems that are not deleted, and those of them that count as
  // running: queued, provisioning, starting, running, stopping or rebooting.
  Result<UserSystemCounts> CountSystemsOfUser(const std::string& user_id);
  // Sessions overlapping [from, to) (open ones included), of one user or,
  // when `user_id` is nullopt, of everyone, with their owner's username.
  Result<std::vector<UserCostSession>> ListCostSessionsBetween(
      TimePoint from, TimePoint to, const std::optional<std::string>& user_id);
  // Users with a monthly budget.
  Result<std::vector<User>> ListUsersWithBudget();
  // Records that `user_id` was warned about their budget in `month`
  // ("2026-03"). Returns false when that was recorded already.
  Result<bool> RecordBudgetWarning(const std::string& user_id, const std::string& month);

  // Access to systems: one-time codes and system cookies (store_access.cc).
  Status InsertSystemAccess(const SystemAccessGrant& grant);
  Result<std::optional<SystemAccessGrant>> GetSystemAccess(const std::string& hash);
  // Deletes one grant; false when it was gone already (a code used twice).
  Result<bool> DeleteSystemAccess(const std::string& hash);
  // Deletes grants that expired before `now`; returns how many.
  Result<int64_t> DeleteExpiredSystemAccess(TimePoint now);

  // Activity and automatic stops (store_activity.cc). A system without a row
  // reads as a record with only system_id set.
  Result<ActivityRecord> GetActivity(const std::string& system_id);
  // Raises proxy_active_at to `at`, never lowering it, so the processes that
  // each saw part of a system's traffic may write in any order.
  Status MergeProxyActivity(const std::string& system_id, TimePoint at);
  // Writes the product and CPU fields of `record`; the other fields stay.
  Status UpdateActivitySignals(const ActivityRecord& record);
  Status SetKeepAlive(const std::string& system_id, TimePoint at, TimePoint until);
  Status SetStopWarning(const std::string& system_id, TimePoint at, TimePoint stop_at,
                        const std::string& reason);

 private:
  sql::Connection& db_;
  const Clock& clock_;
};

class Store {
 public:
  Store(std::unique_ptr<sql::Database> database, const Clock& clock)
      : database_(std::move(database)), clock_(clock) {}

  const Clock& clock() const { return clock_; }
  std::string_view Dialect() const { return database_->Dialect(); }
  Status Migrate() { return database_->Migrate(); }

  // Runs `body` in a read-only transaction.
  Status Read(const std::function<Status(Tx&)>& body);
  // Runs `body` in a write transaction; commits only when it succeeds.
  Status Write(const std::function<Status(Tx&)>& body);

  // Helpers for callbacks that produce a value.
  template <typename T>
  Result<T> ReadValue(const std::function<Result<T>(Tx&)>& body) {
    return Run<T>(sql::TxMode::kRead, body);
  }
  template <typename T>
  Result<T> WriteValue(const std::function<Result<T>(Tx&)>& body) {
    return Run<T>(sql::TxMode::kWrite, body);
  }

 private:
  template <typename T>
  Result<T> Run(sql::TxMode mode, const std::function<Result<T>(Tx&)>& body) {
    std::optional<T> value;
    auto status = database_->InTx(mode, [&](sql::Connection& connection) -> Status {
      Tx tx(connection, clock_);
      auto result = body(tx);
      if (!result) return tl::unexpected(result.error());
      value = std::move(*result);
      return Ok();
    });
    if (!status) return tl::unexpected(status.error());
    return std::move(*value);
  }

  std::unique_ptr<sql::Database> database_;
  const Clock& clock_;
};

}  // namespace puddle
