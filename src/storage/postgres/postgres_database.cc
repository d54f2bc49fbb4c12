#include "storage/postgres/postgres_database.h"

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstring>

#include "common/log.h"
#include "storage/migrations.h"
#include "storage/postgres/postgres_migrations.h"

namespace puddle::sql {

namespace {

// Type OIDs from PostgreSQL's catalog/pg_type.h, which libpq-dev does not install.
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

// Advisory lock key held while migrating: "puddlemg" in ASCII.
constexpr int64_t kMigrationLockKey = 0x707564646c656d67;

using ResultHandle = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string TrimTrailingSpace(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

void LogNotice(void* /*context*/, const char* message) {
  log::Debug("postgres notice", {{"notice", TrimTrailingSpace(message)}});
}

// Maps a SQLSTATE to Puddle's error codes: unique violations become kConflict,
// as SQLite's do, and conditions a retry can clear become kUnavailable.
ErrorCode CodeForSqlState(std::string_view state) {
  if (state == "23505") return ErrorCode::kConflict;               // unique_violation
  if (state.substr(0, 2) == "08") return ErrorCode::kUnavailable;  // connection exception
  if (state == "57P01" || state == "57P02" || state == "57P03") {
    return ErrorCode::kUnavailable;  // admin or crash shutdown, cannot connect now
  }
  if (state == "40001" || state == "40P01") {
    return ErrorCode::kUnavailable;  // serialization failure, deadlock detected
  }
  if (state == "53300" || state == "55P03") {
    return ErrorCode::kUnavailable;  // too many connections, lock not available
  }
  return ErrorCode::kInternal;
}

Value ReadValue(const PGresult* result, int row, int column) {
  if (PQgetisnull(result, row, column)) return std::monostate{};
  const char* text = PQgetvalue(result, row, column);
  const char* end = text + PQgetlength(result, row, column);
  switch (PQftype(result, column)) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: {
      int64_t number = 0;
      auto [at, error] = std::from_chars(text, end, number);
      if (error == std::errc() && at == end) return number;
      break;
    }
    case kBoolOid:
      return int64_t{text[0] == 't' ? 1 : 0};
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid: {
      double real = 0;
      auto [at, error] = std::from_chars(text, end, real);
      if (error == std::errc() && at == end) return real;
      break;
    }
    default:
      break;
  }
  return std::string(text, end);
}

std::string FormatDouble(double value) {
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, end);
}

}  // namespace

class PostgresDatabase::PostgresConnection final : public Connection {
 public:
  PostgresConnection(PGconn* handle, std::string endpoint)
      : handle_(handle), endpoint_(std::move(endpoint)) {}
  ~PostgresConnection() override { PQfinish(handle_); }

  std::string_view Dialect() const override { return "postgres"; }

  Result<std::vector<Row>> Query(std::string_view sql, const Params& params) override {
    PUDDLE_ASSIGN_OR_RETURN(auto result, Run(sql, params));
    int row_count = PQntuples(result.get());
    int column_count = PQnfields(result.get());
    std::vector<Row> rows;
    rows.reserve(row_count);
    for (int r = 0; r < row_count; ++r) {
      std::vector<Value> values;
      values.reserve(column_count);
      for (int c = 0; c < column_count; ++c) values.push_back(ReadValue(result.get(), r, c));
      rows.emplace_back(std::move(values));
    }
    return rows;
  }

  Result<int64_t> Execute(std::string_view sql, const Params& params) override {
    PUDDLE_ASSIGN_OR_RETURN(auto result, Run(sql, params));
    // Empty for statements that report no row count.
    const char* changed = PQcmdTuples(result.get());
    int64_t count = 0;
    std::from_chars(changed, changed + std::strlen(changed), count);
    return count;
  }

  Status ExecuteScript(std::string_view sql) override {
    return Command(sql).map([](const std::string&) {});
  }

  // Runs statements without parameters and returns the command tag of the
  // last one ("COMMIT", or "ROLLBACK" when COMMIT found the transaction failed).
  Result<std::string> Command(std::string_view sql) {
    std::string text(sql);
    PUDDLE_ASSIGN_OR_RETURN(auto result, Check(PQexec(handle_, text.c_str()), sql));
    return std::string(PQcmdStatus(result.get()));
  }

  // True when the server closed the connection or a statement found it dead.
  bool Broken() const { return PQstatus(handle_) != CONNECTION_OK; }
  // True when no transaction is open, so the connection can go back to the pool.
  bool Idle() const { return PQtransactionStatus(handle_) == PQTRANS_IDLE; }

 private:
  Result<ResultHandle> Run(std::string_view sql, const Params& params) {
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<Oid> types(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& value = params[i];
      if (const auto* number = std::get_if<int64_t>(&value)) {
        texts[i] = std::to_string(*number);
        types[i] = kInt8Oid;
      } else if (const auto* real = std::get_if<double>(&value)) {
        texts[i] = FormatDouble(*real);
        types[i] = kFloat8Oid;
      } else if (const auto* text = std::get_if<std::string>(&value)) {
        if (text->find('\0') != std::string::npos) {
          return MakeError(ErrorCode::kValidationFailed,
                           "parameter $" + std::to_string(i + 1) +
                               " contains a NUL byte, which PostgreSQL text cannot store");
        }
        texts[i] = *text;
        types[i] = kTextOid;
      } else {
        continue;  // NULL: no value, type inferred by the server
      }
      values[i] = texts[i].c_str();
    }

    std::string text(sql);
    PGresult* result = PQexecParams(handle_, text.c_str(), static_cast<int>(params.size()),
                                    types.data(), values.data(), nullptr, nullptr, 0);
    return Check(result, sql);
  }

  Result<ResultHandle> Check(PGresult* raw, std::string_view sql) {
    ResultHandle result(raw, PQclear);
    ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
      return result;
    }

    const char* primary = raw ? PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string message = TrimTrailingSpace(primary ? primary : PQerrorMessage(handle_));
    if (Broken()) {
      return MakeError(ErrorCode::kUnavailable,
                       "postgres " + endpoint_ + ": connection lost: " + message);
    }
    const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    ErrorCode code = state ? CodeForSqlState(state) : ErrorCode::kInternal;
    std::string text = "postgres " + endpoint_ + ": " + message;
    if (state) text += " (SQLSTATE " + std::string(state) + ")";
    if (code == ErrorCode::kInternal) text += " in: " + std::string(sql.substr(0, 120));
    return MakeError(code, text);
  }

  PGconn* handle_;
  const std::string endpoint_;
};

PostgresDatabase::PostgresDatabase(const PostgresOptions& options)
    : options_(options),
      endpoint_(options.host + ":" + std::to_string(options.port) + "/" + options.dbname) {}

PostgresDatabase::~PostgresDatabase() = default;

Result<std::unique_ptr<PostgresDatabase>> PostgresDatabase::Open(const PostgresOptions& options) {
  if (options.host.empty()) {
    return MakeError(ErrorCode::kValidationFailed, "postgres host is empty", "host");
  }
  if (options.port < 1 || options.port > 65535) {
    return MakeError(ErrorCode::kValidationFailed,
                     "postgres port " + std::to_string(options.port) + " is not in 1..65535",
                     "port");
  }
  if (options.dbname.empty()) {
    return MakeError(ErrorCode::kValidationFailed, "postgres dbname is empty", "dbname");
  }
  if (options.pool_size < 1) {
    return MakeError(
        ErrorCode::kValidationFailed,
        "postgres pool size " + std::to_string(options.pool_size) + " is invalid; use 1 or more",
        "pool_size");
  }

  std::unique_ptr<PostgresDatabase> database(new PostgresDatabase(options));
  auto first = database->Acquire();
  if (!first) return tl::unexpected(first.error());
  database->Release(std::move(*first));
  log::Info("connected to postgres", {{"address", database->endpoint_}});
  return database;
}

Result<std::unique_ptr<PostgresDatabase::PostgresConnection>> PostgresDatabase::Connect() {
  std::string port = std::to_string(options_.port);
  std::string timeout = std::to_string(options_.connect_timeout_seconds);
  // Keepalives find a peer that vanished without closing the socket within
  // about a minute (30 s idle, then 3 probes 10 s apart).
  const char* keywords[] = {"host",
                            "port",
                            "user",
                            "dbname",
                            "password",
                            "sslmode",
                            "connect_timeout",
                            "application_name",
                            "client_encoding",
                            "keepalives",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            nullptr};
  const char* values[] = {options_.host.c_str(),
                          port.c_str(),
                          options_.user.c_str(),
                          options_.dbname.c_str(),
                          options_.password.c_str(),
                          options_.sslmode.c_str(),
                          timeout.c_str(),
                          "puddle",
                          "UTF8",
                          "1",
                          "30",
                          "10",
                          "3",
                          nullptr};
  PGconn* handle = PQconnectdbParams(keywords, values, 0);
  if (handle == nullptr) {
    return MakeError(ErrorCode::kUnavailable,
                     "connect to postgres " + endpoint_ + " failed: out of memory");
  }
  if (PQstatus(handle) != CONNECTION_OK) {
    std::string message = TrimTrailingSpace(PQerrorMessage(handle));
    PQfinish(handle);
    return MakeError(ErrorCode::kUnavailable,
                     "connect to postgres " + endpoint_ + " as user \"" + options_.user +
                         "\" failed: " + message +
                         "; check the db.connection settings and that the server accepts "
                         "connections");
  }
  PQsetNoticeProcessor(handle, LogNotice, nullptr);
  return std::make_unique<PostgresConnection>(handle, endpoint_);
}

Result<std::unique_ptr<PostgresDatabase::PostgresConnection>> PostgresDatabase::Acquire() {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(options_.acquire_timeout_seconds);
  std::unique_lock lock(mutex_);
  while (true) {
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    if (open_connections_ < options_.pool_size) {
      // Connects without holding the lock. The slot stays reserved meanwhile.
      ++open_connections_;
      lock.unlock();
      auto connection = Connect();
      if (!connection) {
        lock.lock();
        --open_connections_;
        available_.notify_one();
      }
      return connection;
    }
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_connections_ >= options_.pool_size) {
      return MakeError(ErrorCode::kUnavailable,
                       "all " + std::to_string(options_.pool_size) + " connections to postgres " +
                           endpoint_ + " stayed busy for " +
                           std::to_string(options_.acquire_timeout_seconds) + " s");
    }
  }
}

void PostgresDatabase::Release(std::unique_ptr<PostgresConnection> connection) {
  if (connection->Broken() || !connection->Idle()) {
    if (connection->Broken()) {
      log::Warning("postgres connection lost; a new one opens on next use",
                   {{"address", endpoint_}});
    }
    connection.reset();
    std::lock_guard lock(mutex_);
    --open_connections_;
  } else {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
  }
  available_.notify_one();
}

Status PostgresDatabase::InTx(TxMode mode, const std::function<Status(Connection&)>& body) {
  const char* begin = mode == TxMode::kWrite ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                                             : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

  // After a server restart every idle connection is dead, and each is found
  // out only when BEGIN fails on it. Nothing ran yet, so retry: at most once
  // per pooled connection, then once more on a fresh one.
  std::unique_ptr<PostgresConnection> connection;
  for (int attempt = 0;; ++attempt) {
    auto acquired = Acquire();
    if (!acquired) return tl::unexpected(acquired.error());
    connection = std::move(*acquired);
    auto begun = connection->Command(begin);
    if (begun) break;
    bool lost = connection->Broken();
    Release(std::move(connection));
    if (!lost || attempt >= options_.pool_size) return tl::unexpected(begun.error());
  }

  Status result;
  try {
    result = body(*connection);
  } catch (...) {
    // Give the connection back (Release closes it if the ROLLBACK fails), so
    // an exception does not shrink the pool for good.
    (void)connection->Command("ROLLBACK");
    Release(std::move(connection));
    throw;
  }
  if (!result) {
    // A failed ROLLBACK leaves the connection broken or in a transaction, and
    // Release then closes it.
    (void)connection->Command("ROLLBACK");
    Release(std::move(connection));
    return result;
  }

  auto committed = connection->Command("COMMIT");
  Release(std::move(connection));
  if (!committed) {
    if (committed.error().code != ErrorCode::kUnavailable) return tl::unexpected(committed.error());
    return MakeError(ErrorCode::kUnavailable,
                     committed.error().message + "; the transaction may or may not have committed");
  }
  if (*committed != "COMMIT") {
    // PostgreSQL returns the command tag ROLLBACK for COMMIT when a statement
    // in the transaction failed and the callback went on regardless.
    return InternalError("postgres " + endpoint_ +
                         ": the transaction was rolled back because a statement in it failed");
  }
  return Ok();
}

Status PostgresDatabase::Migrate() {
  return InTx(TxMode::kWrite, [](Connection& connection) -> Status {
    // Held until this transaction ends, so a second process waits here and
    // then finds the migrations applied.
    PUDDLE_RETURN_IF_ERROR(
        connection.Query("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey}));
    return ApplyMigrations(connection, PostgresMigrations());
  });
}

}  // namespace puddle::sql
