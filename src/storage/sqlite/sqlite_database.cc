#include "storage/sqlite/sqlite_database.h"

#include <sqlite3.h>

#include "storage/migrations.h"
#include "storage/sqlite/sqlite_migrations.h"

namespace puddle::sql {

class SqliteDatabase::SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* handle) : handle_(handle) {}
  ~SqliteConnection() override { sqlite3_close_v2(handle_); }

  std::string_view Dialect() const override { return "sqlite"; }

  Result<std::vector<Row>> Query(std::string_view sql, const Params& params) override {
    std::vector<Row> rows;
    auto status = Run(sql, params, &rows);
    if (!status) return tl::unexpected(status.error());
    return rows;
  }

  Result<int64_t> Execute(std::string_view sql, const Params& params) override {
    auto status = Run(sql, params, nullptr);
    if (!status) return tl::unexpected(status.error());
    return static_cast<int64_t>(sqlite3_changes(handle_));
  }

  Status ExecuteScript(std::string_view sql) override {
    char* message = nullptr;
    std::string text(sql);
    if (sqlite3_exec(handle_, text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      std::string error = message ? message : "unknown error";
      sqlite3_free(message);
      return InternalError("sqlite: " + error);
    }
    return Ok();
  }

 private:
  Status Run(std::string_view sql, const Params& params, std::vector<Row>* rows) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(handle_, sql.data(), static_cast<int>(sql.size()), &statement,
                           nullptr) != SQLITE_OK) {
      return Fail("prepare", sql);
    }
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> guard(statement,
                                                                     sqlite3_finalize);
    if (auto bound = Bind(statement, params); !bound) return bound;

    while (true) {
      int rc = sqlite3_step(statement);
      if (rc == SQLITE_DONE) return Ok();
      if (rc != SQLITE_ROW) return Fail("step", sql);
      if (rows != nullptr) rows->push_back(ReadRow(statement));
    }
  }

  // Binds $1..$N by name, so a parameter may appear in any order or repeat.
  Status Bind(sqlite3_stmt* statement, const Params& params) {
    for (size_t i = 0; i < params.size(); ++i) {
      std::string name = "$" + std::to_string(i + 1);
      int index = sqlite3_bind_parameter_index(statement, name.c_str());
      if (index == 0) continue;
      const Value& value = params[i];
      int rc;
      if (std::holds_alternative<std::monostate>(value)) {
        rc = sqlite3_bind_null(statement, index);
      } else if (const auto* number = std::get_if<int64_t>(&value)) {
        rc = sqlite3_bind_int64(statement, index, *number);
      } else if (const auto* real = std::get_if<double>(&value)) {
        rc = sqlite3_bind_double(statement, index, *real);
      } else {
        const auto& text = std::get<std::string>(value);
        rc = sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()),
                               SQLITE_TRANSIENT);
      }
      if (rc != SQLITE_OK) return InternalError("sqlite: bind " + name + " failed");
    }
    return Ok();
  }

  static Row ReadRow(sqlite3_stmt* statement) {
    int columns = sqlite3_column_count(statement);
    std::vector<Value> values;
    values.reserve(columns);
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(statement, c)) {
        case SQLITE_NULL: values.emplace_back(std::monostate{}); break;
        case SQLITE_INTEGER: values.emplace_back(int64_t{sqlite3_column_int64(statement, c)}); break;
        case SQLITE_FLOAT: values.emplace_back(sqlite3_column_double(statement, c)); break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, c));
          int length = sqlite3_column_bytes(statement, c);
          values.emplace_back(std::string(text ? text : "", length));
        }
      }
    }
    return Row(std::move(values));
  }

  tl::unexpected<Error> Fail(std::string_view step, std::string_view sql) {
    std::string message = "sqlite " + std::string(step) + ": " + sqlite3_errmsg(handle_);
    int code = sqlite3_extended_errcode(handle_);
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
      // Callers map unique violations to name_taken and the like.
      return MakeError(ErrorCode::kConflict, message);
    }
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
      return MakeError(ErrorCode::kUnavailable, message);
    }
    return InternalError(message + " in: " + std::string(sql.substr(0, 120)));
  }

  sqlite3* handle_;
};

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const std::string& path,
                                                             int pool_size) {
  std::unique_ptr<SqliteDatabase> database(new SqliteDatabase());
  for (int i = 0; i < pool_size; ++i) {
    sqlite3* handle = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &handle, flags, nullptr) != SQLITE_OK) {
      std::string message = handle ? sqlite3_errmsg(handle) : "out of memory";
      sqlite3_close_v2(handle);
      return InternalError("open database " + path + ": " + message);
    }
    sqlite3_busy_timeout(handle, 10000);
    auto connection = std::make_unique<SqliteConnection>(handle);
    auto pragmas = connection->ExecuteScript(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    if (!pragmas) return tl::unexpected(pragmas.error().WithContext("open database " + path));
    database->idle_.push_back(std::move(connection));
  }
  return database;
}

SqliteDatabase::~SqliteDatabase() = default;

std::unique_ptr<SqliteDatabase::SqliteConnection> SqliteDatabase::Acquire() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty(); });
  auto connection = std::move(idle_.back());
  idle_.pop_back();
  return connection;
}

void SqliteDatabase::Release(std::unique_ptr<SqliteConnection> connection) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
  }
  available_.notify_one();
}

Status SqliteDatabase::InTx(TxMode mode, const std::function<Status(Connection&)>& body) {
  auto connection = Acquire();
  auto begun = connection->ExecuteScript(mode == TxMode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!begun) {
    Release(std::move(connection));
    return begun;
  }

  Status result = body(*connection);

  auto finished = connection->ExecuteScript(result ? "COMMIT" : "ROLLBACK");
  Release(std::move(connection));
  if (!result) return result;
  return finished;
}

Status SqliteDatabase::Migrate() {
  return InTx(TxMode::kWrite, [](Connection& connection) {
    return ApplyMigrations(connection, SqliteMigrations());
  });
}

}  // namespace puddle::sql
