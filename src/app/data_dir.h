// The data directory: its layout, permissions and the single-server lock.
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "storage/store.h"

namespace puddle {

struct DataDir {
  std::string root;
  std::string database_path() const { return root + "/puddle.db"; }
  std::string cert_path() const { return root + "/tls/cert.pem"; }
  std::string key_path() const { return root + "/tls/key.pem"; }
  std::string lock_path() const { return root + "/puddle.lock"; }
  std::string initial_password_path() const { return root + "/initial-admin-password"; }
};

// Creates `root` (0711: system directories below it belong to other uids)
// and its tls/ folder (0700), and makes `root` absolute.
Result<DataDir> PrepareDataDir(const std::string& root);

// Takes an exclusive lock so a second server on the same SQLite data
// directory refuses to start. Returns the descriptor holding the lock.
Result<int> LockDataDir(const DataDir& dir);

// Opens and migrates the store in `dir`.
Result<std::unique_ptr<Store>> OpenStore(const DataDir& dir, const Clock& clock);

// Writes `contents` to `path` with mode 0600, replacing it atomically.
Status WritePrivateFile(const std::string& path, const std::string& contents);

}  // namespace puddle
