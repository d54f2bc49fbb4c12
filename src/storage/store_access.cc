// Named queries for access to systems: one-time codes and system cookies.
#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

namespace {

std::string KindName(SystemAccessKind kind) {
  return kind == SystemAccessKind::kCode ? "code" : "cookie";
}

}  // namespace

Status Tx::InsertSystemAccess(const SystemAccessGrant& grant) {
  return db_
      .Execute(
          "INSERT INTO system_access (hash, kind, system_id, user_id, session_hash, created_at, "
          "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          {grant.hash, KindName(grant.kind), grant.system_id, grant.user_id, grant.session_hash,
           Millis(grant.created_at), Millis(grant.expires_at)})
      .map([](int64_t) {});
}

Result<std::optional<SystemAccessGrant>> Tx::GetSystemAccess(const std::string& hash) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT hash, kind, system_id, user_id, session_hash, created_at, "
                           "expires_at FROM system_access WHERE hash = $1",
                           {hash}));
  if (rows.empty()) return std::optional<SystemAccessGrant>();
  const auto& row = rows[0];
  SystemAccessGrant grant;
  grant.hash = row.Text(0);
  grant.kind = row.Text(1) == "code" ? SystemAccessKind::kCode : SystemAccessKind::kCookie;
  grant.system_id = row.Text(2);
  grant.user_id = row.Text(3);
  grant.session_hash = row.Text(4);
  grant.created_at = Time(row, 5);
  grant.expires_at = Time(row, 6);
  return std::optional<SystemAccessGrant>(std::move(grant));
}

Result<bool> Tx::DeleteSystemAccess(const std::string& hash) {
  PUDDLE_ASSIGN_OR_RETURN(auto deleted,
                          db_.Execute("DELETE FROM system_access WHERE hash = $1", {hash}));
  return deleted > 0;
}

Result<int64_t> Tx::DeleteExpiredSystemAccess(TimePoint now) {
  return db_.Execute("DELETE FROM system_access WHERE expires_at < $1", {Millis(now)});
}

}  // namespace puddle
