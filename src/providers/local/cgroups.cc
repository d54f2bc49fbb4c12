#include "providers/local/cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>

#include "providers/local/unique_fd.h"

namespace puddle::local {
namespace {

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

bool Contains(const std::vector<std::string>& items, std::string_view wanted) {
  for (const auto& item : items) {
    if (item == wanted) return true;
  }
  return false;
}

// Mount point of the v1 hierarchy with `controller`, and the part of the
// hierarchy that mount shows (normally "/").
struct Mount {
  std::string mount_point;
  std::string root;
};

std::optional<Mount> FindV1Mount(std::string_view controller) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    // "<id> <parent> <dev> <root> <mount point> <options> ... - <type> <source> <super options>"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::vector<std::string> before = Split(line.substr(0, dash), ' ');
    std::vector<std::string> after = Split(line.substr(dash + 3), ' ');
    if (before.size() < 5 || after.size() < 3 || after[0] != "cgroup") continue;
    if (Contains(Split(after[2], ','), controller)) return Mount{before[4], before[3]};
  }
  return std::nullopt;
}

// Puddle's own cgroup in the v1 hierarchy holding `controller`.
std::optional<std::string> OwnCgroup(std::string_view controller) {
  std::ifstream cgroup("/proc/self/cgroup");
  std::string line;
  while (std::getline(cgroup, line)) {
    // "<hierarchy id>:<controllers>:<path>"
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    if (Contains(Split(line.substr(first + 1, second - first - 1), ','), controller)) {
      return line.substr(second + 1);
    }
  }
  return std::nullopt;
}

std::optional<std::string> SystemCgroupDirectory(std::string_view controller,
                                                 const std::string& group_name,
                                                 const std::string& system_id) {
  auto mount = FindV1Mount(controller);
  auto own = OwnCgroup(controller);
  if (!mount || !own) return std::nullopt;
  std::string relative = *own;
  if (mount->root != "/" && relative.rfind(mount->root, 0) == 0) {
    relative = relative.substr(mount->root.size());
  }
  if (relative == "/") relative.clear();
  return mount->mount_point + relative + "/" + group_name + "/" + system_id;
}

Status WriteControlFile(const std::string& path, const std::string& value) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.Valid()) return InternalError("open " + path + ": " + std::strerror(errno));
  if (write(fd.Get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return InternalError("write " + value + " to " + path + ": " + std::strerror(errno));
  }
  return Ok();
}

std::optional<int64_t> ReadControlNumber(const std::string& path) {
  std::ifstream file(path);
  int64_t value = 0;
  if (!(file >> value)) return std::nullopt;
  return value;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

Status ApplyMemoryLimit(const std::string& directory, int64_t bytes) {
  std::string value = std::to_string(bytes);
  std::string memory = directory + "/memory.limit_in_bytes";
  std::string with_swap = directory + "/memory.memsw.limit_in_bytes";
  if (!Exists(with_swap)) return WriteControlFile(memory, value);
  // The kernel requires memory <= memory+swap at every moment, so the order
  // of the two writes depends on whether an existing limit grows or shrinks.
  // Setting both to the same value means the system cannot use swap.
  if (WriteControlFile(memory, value)) return WriteControlFile(with_swap, value);
  if (auto status = WriteControlFile(with_swap, value); !status) return status;
  return WriteControlFile(memory, value);
}

Status ApplyCpuLimit(const std::string& directory, int64_t cpus) {
  int64_t period = ReadControlNumber(directory + "/cpu.cfs_period_us").value_or(100000);
  return WriteControlFile(directory + "/cpu.cfs_quota_us", std::to_string(cpus * period));
}

Status ApplyPidsLimit(const std::string& directory, int64_t pids_max) {
  return WriteControlFile(directory + "/pids.max", std::to_string(pids_max));
}

Status MakeDirectories(const std::string& directory) {
  size_t parent_end = directory.find_last_of('/');
  std::string parent = directory.substr(0, parent_end);
  if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
    return InternalError("create cgroup " + parent + ": " + std::strerror(errno));
  }
  if (mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) {
    return InternalError("create cgroup " + directory + ": " + std::strerror(errno));
  }
  return Ok();
}

}  // namespace

SystemCgroups CreateSystemCgroups(const std::string& group_name, const std::string& system_id,
                                  const CgroupLimits& limits, std::vector<std::string>* warnings) {
  SystemCgroups result;
  struct Controller {
    std::string_view name;
    bool wanted;
    Status (*apply)(const std::string&, int64_t);
    int64_t value;
    bool* limited;
  };
  const Controller controllers[] = {
      {"memory", limits.memory_bytes > 0, ApplyMemoryLimit, limits.memory_bytes,
       &result.memory_limited},
      {"cpu", limits.cpus > 0, ApplyCpuLimit, limits.cpus, &result.cpu_limited},
      {"pids", limits.pids_max > 0, ApplyPidsLimit, limits.pids_max, &result.pids_limited},
  };

  for (const auto& controller : controllers) {
    if (!controller.wanted) continue;
    auto directory = SystemCgroupDirectory(controller.name, group_name, system_id);
    if (!directory) {
      warnings->push_back("no cgroup v1 " + std::string(controller.name) + " controller");
      continue;
    }
    Status status = MakeDirectories(*directory);
    if (status) status = controller.apply(*directory, controller.value);
    if (!status) {
      warnings->push_back(status.error().message);
      rmdir(directory->c_str());
      continue;
    }
    *controller.limited = true;
    result.directories.push_back(*directory);
    if (controller.name == "memory") result.memory = *directory;
  }
  return result;
}

std::vector<std::string> FindSystemCgroupsOf(int64_t pid, const std::string& group_name,
                                             const std::string& system_id) {
  std::vector<std::string> directories;
  std::string suffix = "/" + group_name + "/" + system_id;
  std::ifstream cgroup("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(cgroup, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string path = line.substr(second + 1);
    if (!path.ends_with(suffix)) continue;
    for (const auto& controller : Split(line.substr(first + 1, second - first - 1), ',')) {
      if (controller != "memory" && controller != "cpu" && controller != "pids") continue;
      auto mount = FindV1Mount(controller);
      if (!mount) continue;
      std::string relative = path;
      if (mount->root != "/" && relative.rfind(mount->root, 0) == 0) {
        relative = relative.substr(mount->root.size());
      }
      directories.push_back(mount->mount_point + relative);
    }
  }
  return directories;
}

std::vector<int64_t> ListCgroupProcesses(const std::vector<std::string>& directories) {
  std::vector<int64_t> pids;
  for (const auto& directory : directories) {
    std::ifstream procs(directory + "/cgroup.procs");
    int64_t pid = 0;
    while (procs >> pid) pids.push_back(pid);
  }
  return pids;
}

std::vector<std::string> RemoveSystemCgroups(const std::vector<std::string>& directories) {
  std::vector<std::string> remaining;
  for (const auto& directory : directories) {
    if (rmdir(directory.c_str()) != 0 && errno != ENOENT) {
      remaining.push_back(directory);
      continue;
    }
    rmdir(directory.substr(0, directory.find_last_of('/')).c_str());
  }
  return remaining;
}

}  // namespace puddle::local
