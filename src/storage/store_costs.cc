// Named queries for quotas, monthly budgets and cost reports.
#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

Result<std::optional<User>> Tx::GetUserForUpdate(const std::string& id) {
  if (Dialect() != "postgres") return GetUser(id);
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kUserColumns +
                               " FROM users WHERE id = $1 FOR UPDATE",
                           {id}));
  if (rows.empty()) return std::optional<User>();
  return std::optional<User>(ReadUser(rows[0]));
}

Result<UserSystemCounts> Tx::CountSystemsOfUser(const std::string& user_id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT COUNT(*), COALESCE(SUM(CASE WHEN status IN ('queued', 'provisioning', "
                "'starting', 'running', 'stopping', 'rebooting') THEN 1 ELSE 0 END), 0) "
                "FROM systems WHERE owner_id = $1 AND status <> 'deleted'",
                {user_id}));
  UserSystemCounts counts;
  counts.systems = rows[0].Int(0);
  counts.running = rows[0].Int(1);
  return counts;
}

Result<std::vector<UserCostSession>> Tx::ListCostSessionsBetween(
    TimePoint from, TimePoint to, const std::optional<std::string>& user_id) {
  // On PostgreSQL users.id has the "C" collation and cost_sessions.user_id the
  // default one, and two collations cannot be compared; SQLite has no "C".
  std::string join = Dialect() == "postgres" ? "u.id = c.user_id COLLATE \"C\"" : "u.id = c.user_id";
  std::string sql =
      "SELECT c.id, c.system_id, c.user_id, c.product, c.system_type, c.start_at, c.end_at, "
      "c.price_per_hour, u.username FROM cost_sessions c JOIN users u ON " + join +
      " WHERE c.start_at < $2 AND (c.end_at IS NULL OR c.end_at > $1)";
  sql::Params params = {Millis(from), Millis(to)};
  if (user_id) {
    sql += " AND c.user_id = $3";
    params.push_back(*user_id);
  }
  sql += " ORDER BY c.start_at, c.id";
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));
  std::vector<UserCostSession> sessions;
  sessions.reserve(rows.size());
  for (const auto& row : rows) {
    UserCostSession item;
    item.session.id = row.Int(0);
    item.session.system_id = row.Text(1);
    item.session.user_id = row.Text(2);
    item.session.product = row.Text(3);
    item.session.system_type = row.Text(4);
    item.session.start = Time(row, 5);
    item.session.end = OptionalTime(row, 6);
    item.session.price_per_hour = row.Real(7);
    item.username = row.Text(8);
    sessions.push_back(std::move(item));
  }
  return sessions;
}

Result<std::vector<User>> Tx::ListUsersWithBudget() {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kUserColumns +
                               " FROM users WHERE quota_monthly_budget IS NOT NULL ORDER BY id",
                           {}));
  std::vector<User> users;
  for (const auto& row : rows) users.push_back(ReadUser(row));
  return users;
}

Result<bool> Tx::RecordBudgetWarning(const std::string& user_id, const std::string& month) {
  PUDDLE_ASSIGN_OR_RETURN(
      int64_t inserted,
      db_.Execute("INSERT INTO budget_warnings (user_id, month, sent_at) VALUES ($1, $2, $3) "
                  "ON CONFLICT (user_id, month) DO NOTHING",
                  {user_id, month, Millis(Now())}));
  return inserted > 0;
}

}  // namespace puddle
