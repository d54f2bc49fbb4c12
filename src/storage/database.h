// Database: a SQL connection pool with transactions, one implementation per dialect.
//
// SQL text uses numbered parameters ($1, $2, ...), which both PostgreSQL and
// SQLite accept, so named queries in store_*.cc are written once. DDL and
// migrations stay per dialect. Thread-safe: each Read/Write borrows one
// connection for the duration of its callback.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace puddle::sql {

using Value = std::variant<std::monostate, int64_t, double, std::string>;

inline Value Null() { return std::monostate{}; }
template <typename T>
Value OrNull(const std::optional<T>& value) {
  if (!value) return std::monostate{};
  return Value(*value);
}

// One result row; columns are read by position in the SELECT list.
class Row {
 public:
  explicit Row(std::vector<Value> values) : values_(std::move(values)) {}

  bool IsNull(size_t column) const;
  std::string Text(size_t column) const;  // "" for NULL
  int64_t Int(size_t column) const;       // 0 for NULL
  double Real(size_t column) const;       // 0 for NULL
  bool Bool(size_t column) const { return Int(column) != 0; }
  std::optional<std::string> OptionalText(size_t column) const;
  std::optional<int64_t> OptionalInt(size_t column) const;
  std::optional<double> OptionalReal(size_t column) const;

 private:
  std::vector<Value> values_;
};

using Params = std::vector<Value>;

class Connection {
 public:
  virtual ~Connection() = default;
  // The Database::Dialect() this connection belongs to, for the few named
  // queries that need dialect-specific SQL.
  virtual std::string_view Dialect() const = 0;
  virtual Result<std::vector<Row>> Query(std::string_view sql, const Params& params) = 0;
  // Returns the number of rows changed.
  virtual Result<int64_t> Execute(std::string_view sql, const Params& params) = 0;
  // Runs several statements without parameters (migrations).
  virtual Status ExecuteScript(std::string_view sql) = 0;
};

enum class TxMode { kRead, kWrite };

class Database {
 public:
  virtual ~Database() = default;

  virtual std::string_view Dialect() const = 0;  // "sqlite", "postgres"

  // Runs `body` in one transaction on a borrowed connection; commits when it
  // returns success, rolls back when it fails. kWrite takes the write lock up
  // front (SQLite BEGIN IMMEDIATE).
  virtual Status InTx(TxMode mode, const std::function<Status(Connection&)>& body) = 0;

  // Applies the pending migrations of this dialect. Fails when the database
  // was written by a newer Puddle than this binary.
  virtual Status Migrate() = 0;
};

}  // namespace puddle::sql
