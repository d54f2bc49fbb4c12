#include "storage/store.h"

namespace puddle {

Status Store::Read(const std::function<Status(Tx&)>& body) {
  return database_->InTx(sql::TxMode::kRead, [&](sql::Connection& connection) {
    Tx tx(connection, clock_);
    return body(tx);
  });
}

Status Store::Write(const std::function<Status(Tx&)>& body) {
  return database_->InTx(sql::TxMode::kWrite, [&](sql::Connection& connection) {
    Tx tx(connection, clock_);
    return body(tx);
  });
}

}  // namespace puddle
