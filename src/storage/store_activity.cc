// Named queries for system activity: signals, keep-alives and stop warnings.
#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

namespace {

sql::Value OptionalFlag(const std::optional<bool>& flag) {
  if (!flag) return sql::Null();
  return int64_t{*flag ? 1 : 0};
}

std::optional<bool> ReadFlag(const sql::Row& row, size_t column) {
  auto value = row.OptionalInt(column);
  if (!value) return std::nullopt;
  return *value != 0;
}

}  // namespace

Result<ActivityRecord> Tx::GetActivity(const std::string& system_id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT proxy_active_at, product_busy, product_busy_since, product_active_at, "
                "product_checked_at, cpu_busy, cpu_percent, cpu_active_at, cpu_checked_at, "
                "cpu_busy_since, keep_alive_at, keep_alive_until, warned_at, warned_stop_at, "
                "warned_reason "
                "FROM system_activity WHERE system_id = $1",
                {system_id}));
  ActivityRecord record;
  record.system_id = system_id;
  if (rows.empty()) return record;
  const sql::Row& row = rows[0];
  record.proxy_active_at = OptionalTime(row, 0);
  record.product_busy = ReadFlag(row, 1);
  record.product_busy_since = OptionalTime(row, 2);
  record.product_active_at = OptionalTime(row, 3);
  record.product_checked_at = OptionalTime(row, 4);
  record.cpu_busy = ReadFlag(row, 5);
  record.cpu_percent = row.OptionalReal(6);
  record.cpu_active_at = OptionalTime(row, 7);
  record.cpu_checked_at = OptionalTime(row, 8);
  record.cpu_busy_since = OptionalTime(row, 9);
  record.keep_alive_at = OptionalTime(row, 10);
  record.keep_alive_until = OptionalTime(row, 11);
  record.warned_at = OptionalTime(row, 12);
  record.warned_stop_at = OptionalTime(row, 13);
  record.warned_reason = row.Text(14);
  return record;
}

namespace {

// Makes sure the system has a row, so the callers can UPDATE it.
Status EnsureActivityRow(sql::Connection& db, const std::string& system_id) {
  return db
      .Execute("INSERT INTO system_activity (system_id) VALUES ($1) "
               "ON CONFLICT (system_id) DO NOTHING",
               {system_id})
      .map([](int64_t) {});
}

}  // namespace

Status Tx::MergeProxyActivity(const std::string& system_id, TimePoint at) {
  PUDDLE_RETURN_IF_ERROR(EnsureActivityRow(db_, system_id));
  return db_
      .Execute("UPDATE system_activity SET proxy_active_at = $2 "
               "WHERE system_id = $1 AND (proxy_active_at IS NULL OR proxy_active_at < $2)",
               {system_id, Millis(at)})
      .map([](int64_t) {});
}

Status Tx::UpdateActivitySignals(const ActivityRecord& record) {
  PUDDLE_RETURN_IF_ERROR(EnsureActivityRow(db_, record.system_id));
  sql::Value cpu_percent = sql::Null();
  if (record.cpu_percent) cpu_percent = *record.cpu_percent;
  return db_
      .Execute("UPDATE system_activity SET product_busy = $2, product_busy_since = $3, "
               "product_active_at = $4, product_checked_at = $5, cpu_busy = $6, "
               "cpu_percent = $7, cpu_active_at = $8, cpu_checked_at = $9, cpu_busy_since = $10 "
               "WHERE system_id = $1",
               {record.system_id, OptionalFlag(record.product_busy),
                OptionalMillis(record.product_busy_since), OptionalMillis(record.product_active_at),
                OptionalMillis(record.product_checked_at), OptionalFlag(record.cpu_busy),
                cpu_percent, OptionalMillis(record.cpu_active_at),
                OptionalMillis(record.cpu_checked_at), OptionalMillis(record.cpu_busy_since)})
      .map([](int64_t) {});
}

Status Tx::SetKeepAlive(const std::string& system_id, TimePoint at, TimePoint until) {
  PUDDLE_RETURN_IF_ERROR(EnsureActivityRow(db_, system_id));
  return db_
      .Execute("UPDATE system_activity SET keep_alive_at = $2, keep_alive_until = $3 "
               "WHERE system_id = $1",
               {system_id, Millis(at), Millis(until)})
      .map([](int64_t) {});
}

Status Tx::SetStopWarning(const std::string& system_id, TimePoint at, TimePoint stop_at,
                          const std::string& reason) {
  PUDDLE_RETURN_IF_ERROR(EnsureActivityRow(db_, system_id));
  return db_
      .Execute("UPDATE system_activity SET warned_at = $2, warned_stop_at = $3, "
               "warned_reason = $4 WHERE system_id = $1",
               {system_id, Millis(at), Millis(stop_at), reason})
      .map([](int64_t) {});
}

}  // namespace puddle
