#include "app/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "storage/sqlite/sqlite_database.h"

namespace puddle {

namespace {

tl::unexpected<Error> SystemError(const std::string& what, const std::string& path) {
  return InternalError(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<DataDir> PrepareDataDir(const std::string& root) {
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(root, error);
  if (error) return InternalError("data directory " + root + ": " + error.message());
  DataDir dir{absolute.lexically_normal().string()};
  if (dir.root.size() > 1 && dir.root.back() == '/') dir.root.pop_back();

  std::filesystem::create_directories(dir.root, error);
  if (error) return InternalError("create data directory " + dir.root + ": " + error.message());
  if (chmod(dir.root.c_str(), 0711) != 0) return SystemError("chmod", dir.root);
  std::string tls = dir.root + "/tls";
  if (mkdir(tls.c_str(), 0700) != 0 && errno != EEXIST) return SystemError("create", tls);
  return dir;
}

Result<int> LockDataDir(const DataDir& dir) {
  int fd = open(dir.lock_path().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return SystemError("open", dir.lock_path());
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return MakeError(ErrorCode::kUnavailable,
                     "another puddle server is using the data directory " + dir.root +
                         "; stop it first (the embedded SQLite store allows one server)");
  }
  return fd;
}

Result<std::unique_ptr<Store>> OpenStore(const DataDir& dir, const Clock& clock) {
  PUDDLE_ASSIGN_OR_RETURN(auto database, sql::SqliteDatabase::Open(dir.database_path()));
  auto store = std::make_unique<Store>(std::move(database), clock);
  PUDDLE_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status WritePrivateFile(const std::string& path, const std::string& contents) {
  std::string temporary = path + ".tmp";
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return SystemError("create", temporary);
  bool written = write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
  bool closed = close(fd) == 0;
  if (!written || !closed || rename(temporary.c_str(), path.c_str()) != 0) {
    unlink(temporary.c_str());
    return SystemError("write", path);
  }
  return Ok();
}

}  // namespace puddle
