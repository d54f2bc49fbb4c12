#include "providers/local/system_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <vector>

#include "providers/local/unique_fd.h"

namespace puddle::local {
namespace {

// Users can nest directories without limit; deeper trees are not removed, so
// the recursion cannot run out of stack or descriptors.
constexpr int kMaxRemoveDepth = 200;

// The maximum ReadLastLines reads from the end of a log, whatever `lines` requests.
constexpr size_t kMaxTailBytes = 8 << 20;

std::string ErrnoText(int error) { return std::strerror(error); }

std::string FormatMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Creates `path` if missing and gives it exactly `mode`. `path` may be a
// symlink to a directory only when `allow_symlink` (the data directory an
// admin configured may be one).
Status EnsureRootDirectory(const std::string& path, mode_t mode, bool allow_symlink) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return InternalError("create directory " + path + ": " + ErrnoText(errno));
  }
  struct stat info;
  int result = allow_symlink ? stat(path.c_str(), &info) : lstat(path.c_str(), &info);
  if (result != 0) return InternalError("inspect " + path + ": " + ErrnoText(errno));
  if (!S_ISDIR(info.st_mode)) {
    return InternalError(path + " is not a directory; move it away so Puddle can create it");
  }
  if ((info.st_mode & 07777) != mode && chmod(path.c_str(), mode) != 0) {
    return InternalError("set mode " + FormatMode(mode) + " on " + path + ": " + ErrnoText(errno));
  }
  return Ok();
}

// Checks that users other than root can traverse every directory from / to
// `path`, which products need to reach their home directories.
Status CheckTraversable(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) {
    return InternalError("resolve " + path + ": " + ErrnoText(errno));
  }
  std::string current;
  std::string full = resolved;
  size_t position = 0;
  while (position != std::string::npos) {
    size_t next = full.find('/', position + 1);
    current = full.substr(0, next == std::string::npos ? full.size() : next);
    if (current.empty()) current = "/";
    struct stat info;
    if (stat(current.c_str(), &info) != 0) {
      return InternalError("inspect " + current + ": " + ErrnoText(errno));
    }
    if ((info.st_mode & S_IXOTH) == 0) {
      return InternalError("products cannot reach " + path + " because " + current +
                           " has mode " + FormatMode(info.st_mode) +
                           "; let other users traverse it (chmod o+x " + current + ")");
    }
    position = next;
  }
  return Ok();
}

// Creates directory `name` under `parent_fd` if missing and opens it without
// following a symlink.
Result<UniqueFd> MakeAndOpenDirectoryAt(int parent_fd, const char* name, const std::string& path) {
  if (mkdirat(parent_fd, name, 0700) != 0 && errno != EEXIST) {
    return InternalError("create directory " + path + ": " + ErrnoText(errno));
  }
  UniqueFd fd(openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.Valid()) {
    return InternalError("open directory " + path + " (it must be a directory, not a symlink): " +
                         ErrnoText(errno));
  }
  return fd;
}

Status OwnDirectory(int fd, const std::string& path, uid_t uid, gid_t gid, bool set_mode) {
  struct stat info;
  if (fstat(fd, &info) != 0) return InternalError("inspect " + path + ": " + ErrnoText(errno));
  if ((info.st_uid != uid || info.st_gid != gid) && fchown(fd, uid, gid) != 0) {
    return InternalError("give " + path + " to uid " + std::to_string(uid) + ": " +
                         ErrnoText(errno));
  }
  if (set_mode && (info.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0) {
    return InternalError("set mode 0700 on " + path + ": " + ErrnoText(errno));
  }
  return Ok();
}

// Opens <dir>/<name> for reading after checking it is a regular file of
// `owner`. An invalid UniqueFd means the file does not exist.
Result<UniqueFd> OpenSystemFile(const std::string& dir, std::string_view name, uid_t owner) {
  std::string path = dir + "/" + std::string(name);
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir_fd.Valid()) {
    if (errno == ENOENT) return UniqueFd();
    return InternalError("open directory " + dir + ": " + ErrnoText(errno));
  }
  // O_NONBLOCK keeps a FIFO planted in place of the file from blocking us.
  std::string name_text(name);
  UniqueFd fd(openat(dir_fd.Get(), name_text.c_str(),
                     O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd.Valid()) {
    if (errno == ENOENT) return UniqueFd();
    if (errno == ELOOP) return InternalError(path + " is a symlink; it is not read");
    return InternalError("open " + path + ": " + ErrnoText(errno));
  }
  struct stat info;
  if (fstat(fd.Get(), &info) != 0) return InternalError("inspect " + path + ": " + ErrnoText(errno));
  if (!S_ISREG(info.st_mode)) return InternalError(path + " is not a regular file; it is not read");
  if (info.st_uid != owner) {
    return InternalError(path + " belongs to uid " + std::to_string(info.st_uid) +
                         ", not the system's uid " + std::to_string(owner) + "; it is not read");
  }
  return fd;
}

Result<std::string> ReadAt(int fd, off_t offset, size_t length, const std::string& path) {
  std::string data(length, '\0');
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, data.data() + done, length - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InternalError("read " + path + ": " + ErrnoText(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

Status RemoveEntryAt(int parent_fd, const std::string& name, const std::string& path, int depth) {
  struct stat info;
  if (fstatat(parent_fd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok();
    return InternalError("inspect " + path + ": " + ErrnoText(errno));
  }
  if (!S_ISDIR(info.st_mode)) {
    if (unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return InternalError("remove " + path + ": " + ErrnoText(errno));
    }
    return Ok();
  }
  if (depth >= kMaxRemoveDepth) {
    return InternalError("remove " + path + ": directories nest deeper than " +
                         std::to_string(kMaxRemoveDepth) + " levels; remove it by hand");
  }

  // A directory swapped for a symlink after fstatat fails to open with
  // O_NOFOLLOW | O_DIRECTORY, so nothing outside the tree is ever entered.
  int fd = openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return InternalError("open directory " + path + ": " + ErrnoText(errno));
  DIR* directory = fdopendir(fd);
  if (directory == nullptr) {
    close(fd);
    return InternalError("list " + path + ": " + ErrnoText(errno));
  }
  std::vector<std::string> children;
  while (dirent* entry = readdir(directory)) {
    std::string child = entry->d_name;
    if (child != "." && child != "..") children.push_back(child);
  }
  Status status = Ok();
  for (const auto& child : children) {
    status = RemoveEntryAt(dirfd(directory), child, path + "/" + child, depth + 1);
    if (!status) break;
  }
  closedir(directory);
  if (!status) return status;
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return InternalError("remove directory " + path + ": " + ErrnoText(errno));
  }
  return Ok();
}

}  // namespace

Status EnsureProviderDirectories(const Layout& layout) {
  if (auto status = EnsureRootDirectory(layout.DataDir(), 0711, /*allow_symlink=*/true); !status) {
    return status;
  }
  if (auto status = EnsureRootDirectory(layout.SystemsDir(), 0711, false); !status) return status;
  if (auto status = EnsureRootDirectory(layout.LocalDir(), 0700, false); !status) return status;
  if (auto status = EnsureRootDirectory(layout.RecordsDir(), 0700, false); !status) return status;
  return CheckTraversable(layout.SystemsDir());
}

Status EnsureSystemDirectory(const Layout& layout, std::string_view id, uid_t uid, gid_t gid) {
  std::string systems = layout.SystemsDir();
  UniqueFd systems_fd(open(systems.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!systems_fd.Valid()) {
    return InternalError("open directory " + systems + ": " + ErrnoText(errno));
  }

  std::string id_text(id);
  auto system_fd = MakeAndOpenDirectoryAt(systems_fd.Get(), id_text.c_str(), layout.SystemDir(id));
  if (!system_fd) return tl::unexpected(system_fd.error());
  if (auto status = OwnDirectory(system_fd->Get(), layout.SystemDir(id), uid, gid, true); !status) {
    return status;
  }

  // The uid owns the system directory, so `home` may be anything it put
  // there; O_NOFOLLOW in MakeAndOpenDirectoryAt refuses a symlink.
  auto home_fd = MakeAndOpenDirectoryAt(system_fd->Get(), "home", layout.HomeDir(id));
  if (!home_fd) return tl::unexpected(home_fd.error());
  struct stat info;
  if (fstat(home_fd->Get(), &info) != 0) {
    return InternalError("inspect " + layout.HomeDir(id) + ": " + ErrnoText(errno));
  }
  bool created_by_root = info.st_uid == 0;
  return OwnDirectory(home_fd->Get(), layout.HomeDir(id), uid, gid, created_by_root);
}

Result<std::optional<std::string>> ReadSystemFile(const std::string& dir, std::string_view name,
                                                  uid_t owner, size_t max_bytes) {
  auto fd = OpenSystemFile(dir, name, owner);
  if (!fd) return tl::unexpected(fd.error());
  if (!fd->Valid()) return std::optional<std::string>();
  auto content = ReadAt(fd->Get(), 0, max_bytes, dir + "/" + std::string(name));
  if (!content) return tl::unexpected(content.error());
  return std::optional<std::string>(std::move(*content));
}

Result<std::string> ReadLastLines(const std::string& dir, std::string_view name, uid_t owner,
                                  int lines) {
  std::string path = dir + "/" + std::string(name);
  auto fd = OpenSystemFile(dir, name, owner);
  if (!fd) return tl::unexpected(fd.error());
  if (!fd->Valid() || lines <= 0) return std::string();
  struct stat info;
  if (fstat(fd->Get(), &info) != 0) return InternalError("inspect " + path + ": " + ErrnoText(errno));

  // Reads backwards in chunks until the text contains `lines` complete lines. A
  // final newline ends the last line, so it is not counted as a separator.
  constexpr size_t kChunk = 64 << 10;
  size_t size = static_cast<size_t>(info.st_size);
  size_t start = size;
  size_t separators = 0;
  std::string tail;
  while (start > 0 && size - start < kMaxTailBytes && separators < static_cast<size_t>(lines)) {
    size_t length = std::min(kChunk, start);
    start -= length;
    auto chunk = ReadAt(fd->Get(), static_cast<off_t>(start), length, path);
    if (!chunk) return tl::unexpected(chunk.error());
    bool is_last_chunk = tail.empty();
    for (size_t i = 0; i < chunk->size(); ++i) {
      bool is_final_newline = is_last_chunk && i + 1 == chunk->size();
      if ((*chunk)[i] == '\n' && !is_final_newline) ++separators;
    }
    tail.insert(0, *chunk);
  }

  size_t end = (!tail.empty() && tail.back() == '\n') ? tail.size() - 1 : tail.size();
  int found = 0;
  size_t cut = 0;
  for (size_t i = end; i > 0; --i) {
    if (tail[i - 1] == '\n' && ++found == lines) {
      cut = i;
      break;
    }
  }
  return tail.substr(cut);
}

Status RemoveDirectoryTree(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (parent.empty()) parent = "/";
  UniqueFd parent_fd(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd.Valid()) {
    if (errno == ENOENT) return Ok();
    return InternalError("open directory " + parent + ": " + ErrnoText(errno));
  }
  return RemoveEntryAt(parent_fd.Get(), name, path, 0);
}

Status WriteFileAtomically(const std::string& path, std::string_view content, mode_t mode) {
  std::string temporary = path + ".tmp";
  UniqueFd fd(open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd.Valid()) return InternalError("create " + temporary + ": " + ErrnoText(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd.Get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InternalError("write " + temporary + ": " + ErrnoText(errno));
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd.Get(), mode) != 0) {
    return InternalError("set mode on " + temporary + ": " + ErrnoText(errno));
  }
  fd.Reset();
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    return InternalError("rename " + temporary + " to " + path + ": " + ErrnoText(errno));
  }
  return Ok();
}

Result<std::optional<std::string>> ReadOwnFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.Valid()) {
    if (errno == ENOENT) return std::optional<std::string>();
    return InternalError("open " + path + ": " + ErrnoText(errno));
  }
  struct stat info;
  if (fstat(fd.Get(), &info) != 0) return InternalError("inspect " + path + ": " + ErrnoText(errno));
  auto content = ReadAt(fd.Get(), 0, static_cast<size_t>(info.st_size), path);
  if (!content) return tl::unexpected(content.error());
  return std::optional<std::string>(std::move(*content));
}

}  // namespace puddle::local
