// Named queries for settings, users, API keys, credentials and login failures.
#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

namespace {

ApiKey ReadApiKey(const sql::Row& row) {
  ApiKey key;
  key.id = row.Text(0);
  key.user_id = row.Text(1);
  key.name = row.Text(2);
  key.secret_hash = row.Text(3);
  key.created_at = Time(row, 4);
  return key;
}

// Advisory lock key that serialises user numbering on PostgreSQL: "puddleun" in ASCII.
constexpr int64_t kUserNumberLockKey = 0x707564646c65756e;

// Returns the WHERE clause for one user's login failures since a time, from
// one address or, when `address` is nullopt, from any. The address condition
// is left out rather than written as `$3 IS NULL OR ...`, because PostgreSQL
// cannot infer the type of a NULL parameter there.
std::string LoginFailureFilter(const std::string& username,
                               const std::optional<std::string>& address, TimePoint since,
                               sql::Params& params) {
  params = {username, Millis(since)};
  std::string where = " WHERE username = $1 AND at >= $2";
  if (address) {
    params.push_back(*address);
    where += " AND address = $3";
  }
  return where;
}

tl::unexpected<Error> BadCursor() {
  return MakeError(ErrorCode::kValidationFailed, "cursor is not one this server returned",
                   "query.cursor");
}

}  // namespace

Result<std::optional<std::string>> Tx::GetSetting(const std::string& key) {
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT value FROM settings WHERE key = $1", {key}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows[0].Text(0));
}

Result<std::string> Tx::PutSettingIfAbsent(const std::string& key, const std::string& value) {
  PUDDLE_RETURN_IF_ERROR(db_.Execute(
      "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
      {key, value}));
  PUDDLE_ASSIGN_OR_RETURN(auto stored, GetSetting(key));
  return stored.value_or(value);
}

Result<User> Tx::InsertUser(User user) {
  // The number is MAX(number) + 1. SQLite runs one writer at a time, but
  // PostgreSQL writers run concurrently, so there they take turns until commit.
  if (Dialect() == "postgres") {
    PUDDLE_RETURN_IF_ERROR(db_.Query("SELECT pg_advisory_xact_lock($1)", {kUserNumberLockKey}));
  }
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT COALESCE(MAX(number), 0) + 1 FROM users", {}));
  int64_t number = rows[0].Int(0);
  auto inserted = db_.Execute(
      "INSERT INTO users (id, number, username, role, disabled, password_hash, quota_systems, "
      "quota_running_systems, quota_monthly_budget, credential_generation, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      {user.id, number, user.username, std::string(RoleName(user.role)),
       int64_t{user.disabled}, user.password_hash, sql::OrNull(user.quota.systems),
       sql::OrNull(user.quota.running_systems), sql::OrNull(user.quota.monthly_budget),
       user.credential_generation, Millis(user.created_at)});
  if (!inserted) {
    if (inserted.error().code == ErrorCode::kConflict) {
      return MakeError(ErrorCode::kNameTaken, "username \"" + user.username + "\" is taken",
                       "username");
    }
    return tl::unexpected(inserted.error());
  }
  return user;
}

Result<std::optional<User>> Tx::GetUser(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query(std::string("SELECT ") + kUserColumns + " FROM users WHERE id = $1", {id}));
  if (rows.empty()) return std::optional<User>();
  return std::optional<User>(ReadUser(rows[0]));
}

Result<std::optional<User>> Tx::GetUserByUsername(const std::string& username) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kUserColumns + " FROM users WHERE username = $1",
                           {username}));
  if (rows.empty()) return std::optional<User>();
  return std::optional<User>(ReadUser(rows[0]));
}

Result<int64_t> Tx::UserNumber(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT number FROM users WHERE id = $1", {id}));
  if (rows.empty()) return MakeError(ErrorCode::kNotFound, "user " + id + " not found");
  return rows[0].Int(0);
}

Result<Page<User>> Tx::ListUsers(const PageRequest& page) {
  int limit = PageLimit(page.limit);
  std::string sql = std::string("SELECT ") + kUserColumns + " FROM users";
  sql::Params params;
  if (!page.cursor.empty()) {
    std::string created, id;
    if (!DecodeCursor(page.cursor, created, id)) return BadCursor();
    sql += " WHERE (created_at < $1 OR (created_at = $1 AND id < $2))";
    params = {std::stoll(created), id};
  }
  sql += " ORDER BY created_at DESC, id DESC LIMIT " + std::to_string(limit + 1);
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));

  Page<User> result;
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
    result.items.push_back(ReadUser(rows[i]));
  }
  if (rows.size() > static_cast<size_t>(limit)) {
    const User& last = result.items.back();
    result.next_cursor = EncodeCursor(std::to_string(Millis(last.created_at)), last.id);
  }
  return result;
}

Status Tx::UpdateUser(const User& user) {
  return db_
      .Execute(
          "UPDATE users SET role = $2, disabled = $3, password_hash = $4, quota_systems = $5, "
          "quota_running_systems = $6, quota_monthly_budget = $7, credential_generation = $8 "
          "WHERE id = $1",
          {user.id, std::string(RoleName(user.role)), int64_t{user.disabled}, user.password_hash,
           sql::OrNull(user.quota.systems), sql::OrNull(user.quota.running_systems),
           sql::OrNull(user.quota.monthly_budget), user.credential_generation})
      .map([](int64_t) {});
}

Result<int64_t> Tx::CountEnabledAdmins() {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0", {}));
  return rows[0].Int(0);
}

Status Tx::InsertApiKey(const ApiKey& key) {
  return db_
      .Execute(
          "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) "
          "VALUES ($1, $2, $3, $4, $5)",
          {key.id, key.user_id, key.name, key.secret_hash, Millis(key.created_at)})
      .map([](int64_t) {});
}

Result<std::optional<ApiKey>> Tx::GetApiKey(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT id, user_id, name, secret_hash, created_at FROM api_keys WHERE id = $1",
                {id}));
  if (rows.empty()) return std::optional<ApiKey>();
  return std::optional<ApiKey>(ReadApiKey(rows[0]));
}

Result<Page<ApiKey>> Tx::ListApiKeys(const std::string& user_id, const PageRequest& page) {
  int limit = PageLimit(page.limit);
  std::string sql =
      "SELECT id, user_id, name, secret_hash, created_at FROM api_keys WHERE user_id = $1";
  sql::Params params = {user_id};
  if (!page.cursor.empty()) {
    std::string created, id;
    if (!DecodeCursor(page.cursor, created, id)) return BadCursor();
    sql += " AND (created_at < $2 OR (created_at = $2 AND id < $3))";
    params.push_back(std::stoll(created));
    params.push_back(id);
  }
  sql += " ORDER BY created_at DESC, id DESC LIMIT " + std::to_string(limit + 1);
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));

  Page<ApiKey> result;
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
    result.items.push_back(ReadApiKey(rows[i]));
  }
  if (rows.size() > static_cast<size_t>(limit)) {
    const ApiKey& last = result.items.back();
    result.next_cursor = EncodeCursor(std::to_string(Millis(last.created_at)), last.id);
  }
  return result;
}

Result<bool> Tx::DeleteApiKey(const std::string& id, const std::string& user_id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto changed, db_.Execute("DELETE FROM api_keys WHERE id = $1 AND user_id = $2", {id, user_id}));
  return changed > 0;
}

Status Tx::DeleteApiKeysOfUser(const std::string& user_id) {
  return db_.Execute("DELETE FROM api_keys WHERE user_id = $1", {user_id}).map([](int64_t) {});
}

Status Tx::InsertCredential(const Credential& credential) {
  return db_
      .Execute(
          "INSERT INTO credentials (hash, kind, user_id, credential_generation, created_at, "
          "last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          {credential.hash,
           std::string(credential.kind == CredentialKind::kSession ? "session" : "token"),
           credential.user_id, credential.credential_generation, Millis(credential.created_at),
           Millis(credential.last_used_at), Millis(credential.expires_at)})
      .map([](int64_t) {});
}

Result<std::optional<Credential>> Tx::GetCredential(const std::string& hash) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT hash, kind, user_id, credential_generation, created_at, "
                           "last_used_at, expires_at FROM credentials WHERE hash = $1",
                           {hash}));
  if (rows.empty()) return std::optional<Credential>();
  const auto& row = rows[0];
  Credential credential;
  credential.hash = row.Text(0);
  credential.kind = row.Text(1) == "session" ? CredentialKind::kSession : CredentialKind::kToken;
  credential.user_id = row.Text(2);
  credential.credential_generation = row.Int(3);
  credential.created_at = Time(row, 4);
  credential.last_used_at = Time(row, 5);
  credential.expires_at = Time(row, 6);
  return std::optional<Credential>(credential);
}

Status Tx::TouchCredential(const std::string& hash, TimePoint used_at) {
  return db_
      .Execute("UPDATE credentials SET last_used_at = $2 WHERE hash = $1", {hash, Millis(used_at)})
      .map([](int64_t) {});
}

Status Tx::DeleteCredential(const std::string& hash) {
  return db_.Execute("DELETE FROM credentials WHERE hash = $1", {hash}).map([](int64_t) {});
}

Status Tx::DeleteCredentialsOfUser(const std::string& user_id, const std::string& keep_hash) {
  return db_
      .Execute("DELETE FROM credentials WHERE user_id = $1 AND hash <> $2", {user_id, keep_hash})
      .map([](int64_t) {});
}

Status Tx::InsertLoginFailure(const std::string& username, const std::string& address) {
  return db_
      .Execute("INSERT INTO login_failures (username, address, at) VALUES ($1, $2, $3)",
               {username, address, Millis(Now())})
      .map([](int64_t) {});
}

Result<int64_t> Tx::CountLoginFailures(const std::string& username,
                                       const std::optional<std::string>& address,
                                       TimePoint since) {
  sql::Params params;
  std::string where = LoginFailureFilter(username, address, since, params);
  PUDDLE_ASSIGN_OR_RETURN(auto rows,
                          db_.Query("SELECT COUNT(*) FROM login_failures" + where, params));
  return rows[0].Int(0);
}

Result<std::optional<TimePoint>> Tx::OldestLoginFailure(const std::string& username,
                                                        const std::optional<std::string>& address,
                                                        TimePoint since) {
  sql::Params params;
  std::string where = LoginFailureFilter(username, address, since, params);
  PUDDLE_ASSIGN_OR_RETURN(auto rows,
                          db_.Query("SELECT MIN(at) FROM login_failures" + where, params));
  return OptionalTime(rows[0], 0);
}

Status Tx::DeleteLoginFailuresBefore(TimePoint cutoff) {
  return db_.Execute("DELETE FROM login_failures WHERE at < $1", {Millis(cutoff)})
      .map([](int64_t) {});
}

}  // namespace puddle
