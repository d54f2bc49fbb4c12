// Named queries for systems, operations, events and cost sessions.
#include "common/ids.h"
#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

namespace {

constexpr const char* kSystemColumns =
    "s.id, s.name, s.owner_id, u.username, s.product, s.version, s.system_type, s.image_id, "
    "s.status, s.vm_status, s.product_status, s.price_per_hour, s.idle_timeout_minutes, "
    "s.provider, s.provider_state, s.address, s.sealed_token, s.created_at, s.updated_at, "
    "s.deleted_at, s.last_activity_at";

System ReadSystem(const sql::Row& row) {
  System system;
  system.id = row.Text(0);
  system.name = row.Text(1);
  system.owner_id = row.Text(2);
  system.owner_username = row.Text(3);
  system.product = row.Text(4);
  system.version = row.Text(5);
  system.system_type = row.Text(6);
  system.image_id = row.Text(7);
  system.status = ParseSystemStatus(row.Text(8)).value_or(SystemStatus::kFailed);
  system.vm_status = ParseVmStatus(row.Text(9)).value_or(VmStatus::kUnknown);
  system.product_status = ParseProductStatus(row.Text(10)).value_or(ProductStatus::kNone);
  system.price_per_hour = row.Real(11);
  system.idle_timeout_minutes = row.Int(12);
  system.provider = row.Text(13);
  system.provider_state = row.Text(14);
  system.address = row.Text(15);
  system.sealed_token = row.Text(16);
  system.created_at = Time(row, 17);
  system.updated_at = Time(row, 18);
  system.deleted_at = OptionalTime(row, 19);
  system.last_activity_at = OptionalTime(row, 20);
  return system;
}

constexpr const char* kOperationColumns =
    "o.id, o.system_id, o.action, o.reason, o.requested_by, u.username, o.state, o.error, "
    "o.created_at, o.updated_at";

Operation ReadOperation(const sql::Row& row) {
  Operation operation;
  operation.id = row.Text(0);
  operation.system_id = row.Text(1);
  operation.action = ParseOperationAction(row.Text(2)).value_or(OperationAction::kFail);
  operation.reason = ParseOperationReason(row.Text(3)).value_or(OperationReason::kReconcile);
  operation.requested_by = row.OptionalText(4);
  operation.requested_by_username = row.Text(5);
  operation.state = ParseOperationState(row.Text(6)).value_or(OperationState::kFailed);
  operation.error = row.Text(7);
  operation.created_at = Time(row, 8);
  operation.updated_at = Time(row, 9);
  return operation;
}

tl::unexpected<Error> BadCursor() {
  return MakeError(ErrorCode::kValidationFailed, "cursor is not one this server returned",
                   "query.cursor");
}

struct SortSpec {
  std::string column;
  bool descending;
  bool numeric;
};

SortSpec ParseSort(const std::string& sort) {
  bool descending = !sort.empty() && sort[0] == '-';
  std::string name = descending ? sort.substr(1) : sort;
  if (name == "name") return {"s.name", descending, false};
  if (name == "status") return {"s.status", descending, false};
  return {"s.created_at", descending, true};
}

std::string SortValue(const System& system, const SortSpec& sort) {
  if (sort.column == "s.name") return system.name;
  if (sort.column == "s.status") return std::string(SystemStatusName(system.status));
  return std::to_string(Millis(system.created_at));
}

}  // namespace

Status Tx::InsertSystem(const System& system) {
  auto inserted = db_.Execute(
      "INSERT INTO systems (id, name, owner_id, product, version, system_type, image_id, status, "
      "vm_status, product_status, price_per_hour, idle_timeout_minutes, provider, "
      "provider_state, address, sealed_token, created_at, updated_at, deleted_at, "
      "last_activity_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
      "$15, $16, $17, $18, $19, $20)",
      {system.id, system.name, system.owner_id, system.product, system.version,
       system.system_type, system.image_id, std::string(SystemStatusName(system.status)),
       std::string(VmStatusName(system.vm_status)),
       std::string(ProductStatusName(system.product_status)), system.price_per_hour,
       system.idle_timeout_minutes, system.provider, system.provider_state, system.address,
       system.sealed_token, Millis(system.created_at), Millis(system.updated_at),
       OptionalMillis(system.deleted_at), OptionalMillis(system.last_activity_at)});
  if (!inserted && inserted.error().code == ErrorCode::kConflict) {
    return MakeError(ErrorCode::kNameTaken,
                     "you already have a system named \"" + system.name + "\"", "name");
  }
  return inserted.map([](int64_t) {});
}

Result<std::optional<System>> Tx::GetSystem(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kSystemColumns +
                               " FROM systems s JOIN users u ON u.id = s.owner_id WHERE s.id = $1",
                           {id}));
  if (rows.empty()) return std::optional<System>();
  return std::optional<System>(ReadSystem(rows[0]));
}

Result<std::optional<System>> Tx::GetSystemForUpdate(const std::string& id) {
  if (Dialect() != "postgres") return GetSystem(id);
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kSystemColumns +
                               " FROM systems s JOIN users u ON u.id = s.owner_id WHERE s.id = $1 "
                               "FOR UPDATE OF s",
                           {id}));
  if (rows.empty()) return std::optional<System>();
  return std::optional<System>(ReadSystem(rows[0]));
}

Result<Page<System>> Tx::ListSystems(const SystemFilter& filter, const PageRequest& page) {
  int limit = PageLimit(page.limit);
  SortSpec sort = ParseSort(filter.sort);
  std::string sql = std::string("SELECT ") + kSystemColumns +
                    " FROM systems s JOIN users u ON u.id = s.owner_id WHERE 1 = 1";
  sql::Params params;
  auto add = [&](const std::string& condition, sql::Value value) {
    params.push_back(std::move(value));
    std::string placeholder = "$" + std::to_string(params.size());
    std::string text = condition;
    for (size_t at = text.find('?'); at != std::string::npos; at = text.find('?')) {
      text.replace(at, 1, placeholder);
    }
    sql += " AND " + text;
  };

  if (filter.owner_id) add("s.owner_id = ?", *filter.owner_id);
  if (filter.status) {
    add("s.status = ?", std::string(SystemStatusName(*filter.status)));
  } else {
    sql += " AND s.status <> 'deleted'";
  }
  if (filter.product) add("s.product = ?", *filter.product);
  if (filter.system_type) add("s.system_type = ?", *filter.system_type);

  if (!page.cursor.empty()) {
    std::string value, id;
    if (!DecodeCursor(page.cursor, value, id)) return BadCursor();
    sql::Value typed = value;
    if (sort.numeric) {
      try {
        typed = std::stoll(value);
      } catch (...) {
        return BadCursor();
      }
    }
    const char* op = sort.descending ? "<" : ">";
    params.push_back(typed);
    std::string v = "$" + std::to_string(params.size());
    params.push_back(id);
    std::string i = "$" + std::to_string(params.size());
    sql += " AND (" + sort.column + " " + op + " " + v + " OR (" + sort.column + " = " + v +
           " AND s.id " + op + " " + i + "))";
  }
  const char* direction = sort.descending ? " DESC" : " ASC";
  sql += " ORDER BY " + sort.column + direction + ", s.id" + direction;
  sql += " LIMIT " + std::to_string(limit + 1);

  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));
  Page<System> result;
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
    result.items.push_back(ReadSystem(rows[i]));
  }
  if (rows.size() > static_cast<size_t>(limit)) {
    const System& last = result.items.back();
    result.next_cursor = EncodeCursor(SortValue(last, sort), last.id);
  }
  return result;
}

Result<std::vector<System>> Tx::ListSystemsByStatus(const std::vector<SystemStatus>& statuses) {
  std::string sql = std::string("SELECT ") + kSystemColumns +
                    " FROM systems s JOIN users u ON u.id = s.owner_id WHERE s.status IN (";
  sql::Params params;
  for (size_t i = 0; i < statuses.size(); ++i) {
    params.push_back(std::string(SystemStatusName(statuses[i])));
    sql += (i ? ", $" : "$") + std::to_string(i + 1);
  }
  sql += ") ORDER BY s.id";
  if (statuses.empty()) return std::vector<System>();
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));
  std::vector<System> systems;
  for (const auto& row : rows) systems.push_back(ReadSystem(row));
  return systems;
}

Status Tx::UpdateSystem(const System& system) {
  return db_
      .Execute(
          "UPDATE systems SET status = $2, vm_status = $3, product_status = $4, "
          "provider_state = $5, address = $6, sealed_token = $7, updated_at = $8, "
          "deleted_at = $9, last_activity_at = $10, idle_timeout_minutes = $11 WHERE id = $1",
          {system.id, std::string(SystemStatusName(system.status)),
           std::string(VmStatusName(system.vm_status)),
           std::string(ProductStatusName(system.product_status)), system.provider_state,
           system.address, system.sealed_token, Millis(Now()), OptionalMillis(system.deleted_at),
           OptionalMillis(system.last_activity_at), system.idle_timeout_minutes})
      .map([](int64_t) {});
}

Result<std::vector<std::pair<SystemStatus, int64_t>>> Tx::CountSystemsByStatus() {
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT status, COUNT(*) FROM systems "
                                               "WHERE status <> 'deleted' GROUP BY status",
                                               {}));
  std::vector<std::pair<SystemStatus, int64_t>> counts;
  for (const auto& row : rows) {
    if (auto status = ParseSystemStatus(row.Text(0))) counts.emplace_back(*status, row.Int(1));
  }
  return counts;
}

Status Tx::InsertOperation(const Operation& operation) {
  return db_
      .Execute(
          "INSERT INTO operations (id, system_id, action, reason, requested_by, state, error, "
          "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          {operation.id, operation.system_id, std::string(OperationActionName(operation.action)),
           std::string(OperationReasonName(operation.reason)),
           sql::OrNull(operation.requested_by),
           std::string(OperationStateName(operation.state)), operation.error,
           Millis(operation.created_at), Millis(operation.updated_at)})
      .map([](int64_t) {});
}

Result<std::optional<Operation>> Tx::GetOperation(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query(std::string("SELECT ") + kOperationColumns +
                    " FROM operations o LEFT JOIN users u ON u.id = o.requested_by WHERE o.id = $1",
                {id}));
  if (rows.empty()) return std::optional<Operation>();
  return std::optional<Operation>(ReadOperation(rows[0]));
}

Status Tx::UpdateOperation(const std::string& id, OperationState state, const std::string& error) {
  return db_
      .Execute("UPDATE operations SET state = $2, error = $3, updated_at = $4 WHERE id = $1",
               {id, std::string(OperationStateName(state)), error, Millis(Now())})
      .map([](int64_t) {});
}

Result<Page<Operation>> Tx::ListOperations(const std::string& system_id, const PageRequest& page) {
  int limit = PageLimit(page.limit);
  std::string sql = std::string("SELECT ") + kOperationColumns +
                    " FROM operations o LEFT JOIN users u ON u.id = o.requested_by "
                    "WHERE o.system_id = $1";
  sql::Params params = {system_id};
  if (!page.cursor.empty()) {
    std::string created, id;
    if (!DecodeCursor(page.cursor, created, id)) return BadCursor();
    sql += " AND (o.created_at < $2 OR (o.created_at = $2 AND o.id < $3))";
    params.push_back(std::stoll(created));
    params.push_back(id);
  }
  sql += " ORDER BY o.created_at DESC, o.id DESC LIMIT " + std::to_string(limit + 1);
  PUDDLE_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));

  Page<Operation> result;
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(limit); ++i) {
    result.items.push_back(ReadOperation(rows[i]));
  }
  if (rows.size() > static_cast<size_t>(limit)) {
    const Operation& last = result.items.back();
    result.next_cursor = EncodeCursor(std::to_string(Millis(last.created_at)), last.id);
  }
  return result;
}

Result<Event> Tx::InsertEvent(const std::string& system_id,
                              const std::optional<std::string>& operation_id, EventLevel level,
                              const std::string& message) {
  Event event;
  event.id = NewId(20);
  event.system_id = system_id;
  event.operation_id = operation_id;
  event.level = level;
  event.message = message;
  event.time = Now();
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("INSERT INTO events (id, system_id, operation_id, level, message, time) "
                "VALUES ($1, $2, $3, $4, $5, $6) RETURNING sequence",
                {event.id, system_id, sql::OrNull(operation_id),
                 std::string(EventLevelName(level)), message, Millis(event.time)}));
  event.sequence = rows.empty() ? 0 : rows[0].Int(0);
  return event;
}

Result<std::vector<Event>> Tx::ListEvents(const std::string& system_id, int64_t after_sequence,
                                          int limit) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT sequence, id, system_id, operation_id, level, message, time "
                           "FROM events WHERE system_id = $1 AND sequence > $2 "
                           "ORDER BY sequence LIMIT $3",
                           {system_id, after_sequence, int64_t{PageLimit(limit)}}));
  std::vector<Event> events;
  for (const auto& row : rows) {
    Event event;
    event.sequence = row.Int(0);
    event.id = row.Text(1);
    event.system_id = row.Text(2);
    event.operation_id = row.OptionalText(3);
    std::string level = row.Text(4);
    event.level = level == "error"     ? EventLevel::kError
                  : level == "warning" ? EventLevel::kWarning
                                       : EventLevel::kInfo;
    event.message = row.Text(5);
    event.time = Time(row, 6);
    events.push_back(std::move(event));
  }
  return events;
}

Status Tx::OpenCostSession(const System& system) {
  // At most one open session per system: opening twice is a no-op.
  PUDDLE_ASSIGN_OR_RETURN(
      auto open, db_.Query("SELECT id FROM cost_sessions WHERE system_id = $1 AND end_at IS NULL",
                           {system.id}));
  if (!open.empty()) return Ok();
  return db_
      .Execute(
          "INSERT INTO cost_sessions (system_id, user_id, product, system_type, start_at, "
          "price_per_hour) VALUES ($1, $2, $3, $4, $5, $6)",
          {system.id, system.owner_id, system.product, system.system_type, Millis(Now()),
           system.price_per_hour})
      .map([](int64_t) {});
}

Status Tx::CloseCostSession(const std::string& system_id, TimePoint end) {
  // A session never ends before it started, even when `end` is earlier.
  return db_
      .Execute("UPDATE cost_sessions "
               "SET end_at = CASE WHEN start_at > $2 THEN start_at ELSE $2 END "
               "WHERE system_id = $1 AND end_at IS NULL",
               {system_id, Millis(end)})
      .map([](int64_t) {});
}

Result<std::vector<CostSession>> Tx::ListCostSessions(const std::string& system_id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT id, system_id, user_id, product, system_type, start_at, end_at, "
                           "price_per_hour FROM cost_sessions WHERE system_id = $1 "
                           "ORDER BY start_at, id",
                           {system_id}));
  std::vector<CostSession> sessions;
  for (const auto& row : rows) {
    CostSession session;
    session.id = row.Int(0);
    session.system_id = row.Text(1);
    session.user_id = row.Text(2);
    session.product = row.Text(3);
    session.system_type = row.Text(4);
    session.start = Time(row, 5);
    session.end = OptionalTime(row, 6);
    session.price_per_hour = row.Real(7);
    sessions.push_back(session);
  }
  return sessions;
}

}  // namespace puddle
