// The local provider's files under Puddle's data directory, and the careful
// file operations that root may perform inside directories a system's uid owns.
//
//   <data_dir>/                0711 root: others may traverse, not list
//   <data_dir>/systems/        0711 root
//   <data_dir>/systems/<id>/   0700 the system's uid: product.log, exit-status.json
//   <data_dir>/systems/<id>/home/  0700 the system's uid: HOME and {dataDir}
//   <data_dir>/local/          0700 root: the provider's own records
//
// A system's uid owns everything under its directory, so it can replace any
// file there with a symlink or a FIFO at any moment. Every function here that
// touches such a directory opens entries relative to a directory descriptor
// with O_NOFOLLOW and checks the type and owner of what it opened. All
// functions are thread-safe.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace puddle::local {

class Layout {
 public:
  explicit Layout(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  const std::string& DataDir() const { return data_dir_; }
  std::string SystemsDir() const { return data_dir_ + "/systems"; }
  std::string SystemDir(std::string_view id) const { return SystemsDir() + "/" + std::string(id); }
  std::string HomeDir(std::string_view id) const { return SystemDir(id) + "/home"; }
  std::string LocalDir() const { return data_dir_ + "/local"; }
  std::string RecordPath(std::string_view id) const {
    return LocalDir() + "/systems/" + std::string(id) + ".json";
  }
  std::string RecordsDir() const { return LocalDir() + "/systems"; }
  std::string PortLockPath() const { return LocalDir() + "/ports.lock"; }

 private:
  std::string data_dir_;
};

// Creates the provider's directories with the modes above (fixing the modes of
// existing ones) and checks that every ancestor of <data_dir>/systems lets
// other users traverse it, since products run as other users.
Status EnsureProviderDirectories(const Layout& layout);

// Creates <data_dir>/systems/<id>/ and its home/ owned by uid:gid, mode 0700.
// Safe to call again on an existing directory.
Status EnsureSystemDirectory(const Layout& layout, std::string_view id, uid_t uid, gid_t gid);

// Reads up to `max_bytes` of <dir>/<name> when it is a regular file owned by
// `owner`. Returns nullopt when the file does not exist; fails when it is a
// symlink, not a regular file or owned by someone else.
Result<std::optional<std::string>> ReadSystemFile(const std::string& dir, std::string_view name,
                                                  uid_t owner, size_t max_bytes);

// Returns the last `lines` lines of <dir>/<name> (same checks as
// ReadSystemFile; an empty string when the file does not exist).
Result<std::string> ReadLastLines(const std::string& dir, std::string_view name, uid_t owner,
                                  int lines);

// Removes `path` and everything below it without following symlinks.
// Succeeds when `path` does not exist.
Status RemoveDirectoryTree(const std::string& path);

// Writes `content` to `path` through a temporary file and rename, so readers
// see the old or the new content, never a part.
Status WriteFileAtomically(const std::string& path, std::string_view content, mode_t mode);

// Reads a file the provider itself owns. Returns nullopt when it does not exist.
Result<std::optional<std::string>> ReadOwnFile(const std::string& path);

}  // namespace puddle::local
