// Named queries for leases, which keep each periodic loop in one process.
#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

Result<bool> Tx::TryAcquireLease(const std::string& name, const std::string& holder,
                                 std::chrono::milliseconds ttl) {
  // One statement on both dialects. On PostgreSQL, a concurrent insert of the
  // same name waits for the first to commit, then evaluates the DO UPDATE
  // condition against the row that one wrote, so two holders never both win.
  TimePoint now = Now();
  PUDDLE_ASSIGN_OR_RETURN(
      int64_t changed,
      db_.Execute("INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) "
                  "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                  "expires_at = excluded.expires_at "
                  "WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
                  {name, holder, Millis(now + ttl), Millis(now)}));
  return changed > 0;
}

Status Tx::ReleaseLease(const std::string& name, const std::string& holder) {
  return db_.Execute("DELETE FROM leases WHERE name = $1 AND holder = $2", {name, holder})
      .map([](int64_t) {});
}

}  // namespace puddle
