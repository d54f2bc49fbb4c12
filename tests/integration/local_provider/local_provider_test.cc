// LocalProvider against real processes, real files and real sockets.
//
// The tests run as root, as CI does, so every launch takes the privilege drop
// path. Each test deletes every system it creates, and TearDown checks that
// no process tagged with the test's installation id is left.
#include "providers/local/local_provider.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/ids.h"
#include "providers/local/health_check.h"
#include "providers/local/launch_plan.h"
#include "providers/local/process_table.h"
#include "providers/local/provider_state.h"
#include "providers/local/system_files.h"

namespace puddle {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int64_t kUidMin = 200000;
constexpr int64_t kUidMax = 265535;

std::string ReadText(const std::string& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

// The "Uid:" or "Gid:" line of /proc/<pid>/status: real, effective, saved, fs.
std::vector<int64_t> StatusIds(int64_t pid, const std::string& field) {
  std::istringstream status(ReadText("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) != 0) continue;
    std::istringstream values(line.substr(field.size()));
    std::vector<int64_t> ids;
    int64_t id;
    while (values >> id) ids.push_back(id);
    return ids;
  }
  return {};
}

std::string StatusLine(int64_t pid, const std::string& field) {
  std::istringstream status(ReadText("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return line.substr(field.size());
  }
  return {};
}

std::map<int, std::string> OpenDescriptors(int64_t pid) {
  std::map<int, std::string> descriptors;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code error;
    descriptors[std::stoi(entry.path().filename())] = fs::read_symlink(entry.path(), error);
  }
  return descriptors;
}

struct HttpResponse {
  long status = 0;
  std::string body;
};

size_t AppendBody(char* data, size_t size, size_t count, void* body) {
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::string& authorization) {
  HttpResponse response;
  CURL* curl = curl_easy_init();
  if (method == "POST") curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_slist* headers = curl_slist_append(nullptr, ("Authorization: " + authorization).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return response;
}

HttpResponse HttpGet(const std::string& url, const std::string& authorization) {
  return HttpRequest("GET", url, authorization);
}

mode_t Mode(const std::string& path) {
  struct stat info{};
  lstat(path.c_str(), &info);
  return info.st_mode & 07777;
}

uid_t Owner(const std::string& path) {
  struct stat info{};
  lstat(path.c_str(), &info);
  return info.st_uid;
}

class LocalProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "the local provider starts products as other uids; run this test as root";
    }
    char pattern[] = "/tmp/puddle-local-provider-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    // Products run as other uids and must reach their directories and the
    // test product below.
    ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
    fs::create_directories(root_ + "/bin");
    product_path_ = root_ + "/bin/test_product.py";
    fs::copy_file(PUDDLE_TEST_PRODUCT, product_path_);
    ASSERT_EQ(chmod(product_path_.c_str(), 0755), 0);

    options_.data_dir = root_ + "/data";
    options_.installation_id = "test-" + NewId(10);
    options_.uid_min = kUidMin;
    options_.uid_max = kUidMax;
    options_.stop_grace_seconds = 5;
    options_.supervisor_executable = PUDDLE_TEST_SUPERVISOR;
    provider_ = std::make_unique<LocalProvider>(options_);
  }

  void TearDown() override {
    if (root_.empty()) return;
    for (const auto& [id, state] : systems_) {
      EXPECT_TRUE(provider_->Delete(id, state)) << "delete " << id;
    }
    auto owned = provider_->ListOwned();
    ASSERT_TRUE(owned);
    for (const auto& resource : *owned) {
      ADD_FAILURE() << "left running: " << resource.resource_id << " of " << resource.system_id;
    }
    for (const auto& directory : CgroupParents()) {
      EXPECT_FALSE(fs::exists(directory)) << "cgroup left behind: " << directory;
    }
    std::error_code error;
    fs::remove_all(root_, error);
  }

  // Where this installation's cgroups would be: under the test's own cgroup
  // in each v1 controller.
  std::vector<std::string> CgroupParents() {
    std::vector<std::string> parents;
    std::istringstream cgroups(ReadText("/proc/self/cgroup"));
    std::string line;
    while (std::getline(cgroups, line)) {
      size_t first = line.find(':');
      size_t second = line.find(':', first + 1);
      std::string controller = line.substr(first + 1, second - first - 1);
      if (controller != "memory" && controller != "cpu" && controller != "pids") continue;
      std::string own = line.substr(second + 1);
      if (own == "/") own.clear();
      parents.push_back("/sys/fs/cgroup/" + controller + own + "/puddle-" + options_.installation_id);
    }
    return parents;
  }

  LaunchRequest ProductRequest(const std::vector<std::string>& extra_arguments = {}) {
    LaunchRequest request;
    request.installation_id = options_.installation_id;
    request.system_id = "lp-" + NewId(10);
    request.owner_id = "user-1";
    request.owner_username = "alice";
    request.owner_number = 7;
    request.system_type.id = "cpu-small";
    request.system_type.cpus = 1;
    request.system_type.memory_mib = 512;
    request.image.launch.command = {"/usr/bin/python3", "-u", product_path_,
                                    "--address={address}", "--port={port}",
                                    "--base-path={basePath}"};
    for (const auto& argument : extra_arguments) request.image.launch.command.push_back(argument);
    request.image.launch.env = {{"PRODUCT_TOKEN", "{token}"}};
    request.product_token = "tok" + NewId(24);
    return request;
  }

  // Creates the system and remembers it for TearDown.
  local::LocalState Create(const LaunchRequest& request) {
    auto state = provider_->Create(request);
    EXPECT_TRUE(state) << (state ? "" : state.error().message);
    if (!state) return {};
    systems_[request.system_id] = *state;
    auto parsed = local::ParseState(*state);
    EXPECT_TRUE(parsed);
    return parsed ? *parsed : local::LocalState{};
  }

  void Remember(const std::string& id, const std::string& state) { systems_[id] = state; }

  bool WaitReady(const LaunchRequest& request, std::chrono::milliseconds timeout = 30s) {
    return WaitFor([&] {
      return provider_->CheckProduct(request, systems_[request.system_id]) == ProductStatus::kReady;
    }, timeout);
  }

  // Pids of live processes carrying this test's installation id and `system_id`.
  std::vector<int64_t> TaggedProcesses(const std::string& system_id) {
    std::vector<int64_t> pids;
    for (int64_t pid : local::ListProcessIds()) {
      auto stat = local::ReadProcessStat(pid);
      if (!stat || stat->state == 'Z') continue;
      if (local::ReadProcessEnvironmentValue(pid, "PUDDLE_INSTALLATION_ID") ==
              options_.installation_id &&
          local::ReadProcessEnvironmentValue(pid, "PUDDLE_SYSTEM_ID") == system_id) {
        pids.push_back(pid);
      }
    }
    return pids;
  }

  std::string SystemDir(const std::string& id) { return options_.data_dir + "/systems/" + id; }

  std::string root_;
  std::string product_path_;
  LocalProviderOptions options_;
  std::unique_ptr<LocalProvider> provider_;
  std::map<std::string, std::string> systems_;
};

TEST_F(LocalProviderTest, CreateRunsProductUnprivilegedAndReady) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(state.running);
  ASSERT_TRUE(WaitReady(request));

  auto observation = provider_->Poll(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(observation);
  EXPECT_EQ(observation->vm_status, VmStatus::kRunning);
  EXPECT_EQ(observation->address, "127.0.0.2:" + std::to_string(state.port));
  EXPECT_GE(state.port, options_.port_min);
  EXPECT_LE(state.port, options_.port_max);

  // The product accepts only its own token.
  std::string url = "http://127.0.0.2:" + std::to_string(state.port) + "/systems/" +
                    request.system_id + "/api/status";
  EXPECT_EQ(local::CheckHttpHealth(url, "wrong-token", 5s), ProductStatus::kUnhealthy);
  EXPECT_EQ(HttpGet(url, "token " + request.product_token).status, 200);
}

// A listening socket of the test process (root) on 127.0.0.2, standing in for
// another user's process that took a product's port.
class ForeignListener {
 public:
  ForeignListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &address.sin_addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    listen(fd_, 8);
    socklen_t length = sizeof address;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~ForeignListener() { close(fd_); }
  int port() const { return port_; }
  // True when someone connected since the listener opened.
  bool WasContacted() const {
    int client = accept(fd_, nullptr, nullptr);
    if (client < 0) return false;
    close(client);
    return true;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(LocalProviderTest, HealthCheckSendsTokenOnlyToOwnListener) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));
  EXPECT_TRUE(local::ListenerOwnedBy("127.0.0.2", static_cast<int>(state.port),
                                     static_cast<uid_t>(state.uid)));
  EXPECT_FALSE(local::ListenerOwnedBy("127.0.0.2", static_cast<int>(state.port), 0));

  // The same system's state, pointed at a port another uid (root here) holds.
  ForeignListener foreign;
  ASSERT_GT(foreign.port(), 0);
  EXPECT_FALSE(local::ListenerOwnedBy("127.0.0.2", foreign.port(), static_cast<uid_t>(state.uid)));
  std::string hijacked = systems_[request.system_id];
  std::string from = "\"port\":" + std::to_string(state.port);
  size_t at = hijacked.find(from);
  ASSERT_NE(at, std::string::npos) << hijacked;
  hijacked.replace(at, from.size(), "\"port\":" + std::to_string(foreign.port()));

  EXPECT_EQ(provider_->CheckProduct(request, hijacked), ProductStatus::kUnhealthy);
  EXPECT_FALSE(foreign.WasContacted()) << "the health check connected to another uid's listener";
}

TEST_F(LocalProviderTest, ProcessesRunAsOwnerUidNeverRoot) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  int64_t expected = kUidMin + request.owner_number;
  EXPECT_EQ(state.uid, expected);
  for (int64_t pid : {state.pid, state.supervisor_pid}) {
    EXPECT_EQ(StatusIds(pid, "Uid:"), std::vector<int64_t>(4, expected)) << "pid " << pid;
    EXPECT_EQ(StatusIds(pid, "Gid:"), std::vector<int64_t>(4, expected)) << "pid " << pid;
    EXPECT_EQ(StatusLine(pid, "Groups:").find_first_not_of(" \t"), std::string::npos)
        << "pid " << pid << " kept supplementary groups";
    EXPECT_EQ(StatusLine(pid, "NoNewPrivs:").find('1'), 1u) << "pid " << pid;
  }
  // The supervisor leads its own session and process group; the product is in it.
  auto supervisor = local::ReadProcessStat(state.supervisor_pid);
  auto product = local::ReadProcessStat(state.pid);
  ASSERT_TRUE(supervisor);
  ASSERT_TRUE(product);
  EXPECT_EQ(supervisor->sid, state.supervisor_pid);
  EXPECT_EQ(supervisor->pgid, state.supervisor_pid);
  EXPECT_EQ(product->pgid, state.supervisor_pid);
  EXPECT_EQ(product->ppid, state.supervisor_pid);
  // Detached: the supervisor is not a child of the process that launched it.
  EXPECT_NE(supervisor->ppid, getpid());
}

TEST_F(LocalProviderTest, SystemCannotReadOtherUsersOrPuddleFiles) {
  LaunchRequest alice = ProductRequest();
  local::LocalState alice_state = Create(alice);
  ASSERT_TRUE(WaitReady(alice));
  std::string secret = SystemDir(alice.system_id) + "/home/secret.txt";
  std::ofstream(secret) << "alice's data";
  ASSERT_EQ(chmod(secret.c_str(), 0644), 0);
  ASSERT_EQ(chown(secret.c_str(), static_cast<uid_t>(alice_state.uid),
                  static_cast<gid_t>(alice_state.uid)), 0);
  std::string record = options_.data_dir + "/local/systems/" + alice.system_id + ".json";

  LaunchRequest bob = ProductRequest({"--try-read=" + secret, "--try-read=" + record,
                                      "--try-read=" + SystemDir(alice.system_id) + "/product.log"});
  bob.owner_number = 8;
  bob.owner_username = "bob";
  Create(bob);
  ASSERT_TRUE(WaitReady(bob));
  std::string log = ReadText(SystemDir(bob.system_id) + "/product.log");
  EXPECT_NE(log.find("try-read " + secret + ": denied"), std::string::npos) << log;
  EXPECT_NE(log.find("try-read " + record + ": denied"), std::string::npos) << log;
  EXPECT_NE(log.find("product.log: denied"), std::string::npos) << log;
  EXPECT_EQ(log.find(": allowed"), std::string::npos) << log;
}

TEST_F(LocalProviderTest, SupervisorRefusesToRunAsRoot) {
  int channel[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, channel), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(channel[1], 3);
    close_range(4, ~0U, 0);
    execl(PUDDLE_TEST_SUPERVISOR, "puddle", "supervise", "--system-id=lp-root", nullptr);
    _exit(127);
  }
  close(channel[1]);
  std::string reply;
  char buffer[256];
  ssize_t n;
  while ((n = read(channel[0], buffer, sizeof(buffer))) > 0) reply.append(buffer, n);
  close(channel[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(reply, "error the supervisor refuses to run as root\n");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

TEST_F(LocalProviderTest, TokenOnlyInEnvironment) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  for (int64_t pid : {state.pid, state.supervisor_pid}) {
    std::string cmdline = ReadText("/proc/" + std::to_string(pid) + "/cmdline");
    EXPECT_EQ(cmdline.find(request.product_token), std::string::npos) << "pid " << pid;
  }
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.pid, "PRODUCT_TOKEN"), request.product_token);
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.supervisor_pid, "PRODUCT_TOKEN"), std::nullopt);
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.pid, "PUDDLE_SYSTEM_ID"), request.system_id);
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.pid, "PUDDLE_INSTALLATION_ID"),
            options_.installation_id);
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.pid, "HOME"),
            SystemDir(request.system_id) + "/home");
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.pid, "PATH"), "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.pid, "USER"), "alice");
  EXPECT_EQ(local::ReadProcessEnvironmentValue(state.pid, "LANG"), "C.UTF-8");

  // Neither the state the core stores nor the log contains the token.
  EXPECT_EQ(systems_[request.system_id].find(request.product_token), std::string::npos);
  EXPECT_EQ(ReadText(SystemDir(request.system_id) + "/product.log").find(request.product_token),
            std::string::npos);
}

TEST_F(LocalProviderTest, NoInheritedDescriptors) {
  // A descriptor without close-on-exec, as a careless thread of Puddle could
  // hold, must still not reach the supervisor or the product.
  int leaked = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  close(leaked);
  ASSERT_TRUE(WaitReady(request));
  std::string log_path = SystemDir(request.system_id) + "/product.log";

  // What the product held when it started, before it opened its socket.
  EXPECT_NE(ReadText(log_path).find("descriptors at start: 0 1 2\n"), std::string::npos)
      << ReadText(log_path);

  auto product = OpenDescriptors(state.pid);
  EXPECT_EQ(product[0], "/dev/null");
  EXPECT_EQ(product[1], log_path);
  EXPECT_EQ(product[2], log_path);
  // By now the product has opened its own sockets (and may briefly hold a
  // file it reads), but nothing like what the launcher held.
  for (const auto& [fd, target] : product) {
    if (fd <= 2) continue;
    EXPECT_NE(target, "/dev/null") << "fd " << fd;
    EXPECT_NE(target.rfind("pipe:", 0), 0u) << "fd " << fd << " -> " << target;
    EXPECT_NE(target.rfind(options_.data_dir, 0), 0u) << "fd " << fd << " -> " << target;
  }
  auto supervisor = OpenDescriptors(state.supervisor_pid);
  EXPECT_EQ(supervisor.size(), 3u);
  EXPECT_EQ(supervisor[0], "/dev/null");
  EXPECT_EQ(supervisor[1], log_path);
  EXPECT_EQ(supervisor[2], log_path);
}

TEST_F(LocalProviderTest, DirectoryModesAndOwners) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));
  uid_t uid = static_cast<uid_t>(state.uid);
  std::string system_dir = SystemDir(request.system_id);

  EXPECT_EQ(Mode(options_.data_dir), 0711u);
  EXPECT_EQ(Owner(options_.data_dir), 0u);
  EXPECT_EQ(Mode(options_.data_dir + "/systems"), 0711u);
  EXPECT_EQ(Owner(options_.data_dir + "/systems"), 0u);
  EXPECT_EQ(Mode(options_.data_dir + "/local"), 0700u);
  EXPECT_EQ(Owner(options_.data_dir + "/local"), 0u);
  EXPECT_EQ(Mode(system_dir), 0700u);
  EXPECT_EQ(Owner(system_dir), uid);
  EXPECT_EQ(Mode(system_dir + "/home"), 0700u);
  EXPECT_EQ(Owner(system_dir + "/home"), uid);
  EXPECT_EQ(Mode(system_dir + "/product.log"), 0600u);
  EXPECT_EQ(Owner(system_dir + "/product.log"), uid);
  for (const auto& entry : fs::directory_iterator(options_.data_dir + "/local/systems")) {
    EXPECT_EQ(Mode(entry.path()), 0600u) << entry.path();
    EXPECT_EQ(Owner(entry.path()), 0u) << entry.path();
  }
}

TEST_F(LocalProviderTest, StopThenStartKeepsHome) {
  LaunchRequest request = ProductRequest();
  local::LocalState first = Create(request);
  ASSERT_TRUE(WaitReady(request));
  std::string kept = SystemDir(request.system_id) + "/home/notebook.ipynb";
  std::ofstream(kept) << "{}";
  ASSERT_EQ(chown(kept.c_str(), static_cast<uid_t>(first.uid), static_cast<gid_t>(first.uid)), 0);

  auto stopped = provider_->Stop(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(stopped) << stopped.error().message;
  Remember(request.system_id, *stopped);
  EXPECT_FALSE(local::IsProcessAlive(first.pid, first.start_ticks));
  EXPECT_FALSE(local::IsProcessAlive(first.supervisor_pid, first.supervisor_start_ticks));
  EXPECT_TRUE(TaggedProcesses(request.system_id).empty());
  auto observation = provider_->Poll(request.system_id, *stopped);
  ASSERT_TRUE(observation);
  EXPECT_EQ(observation->vm_status, VmStatus::kStopped);
  EXPECT_EQ(observation->gone, GoneReason::kNone);
  EXPECT_TRUE(fs::exists(kept));

  auto started = provider_->Start(request, *stopped);
  ASSERT_TRUE(started) << started.error().message;
  Remember(request.system_id, *started);
  ASSERT_TRUE(WaitReady(request));
  auto second = local::ParseState(*started);
  ASSERT_TRUE(second);
  EXPECT_NE(second->pid, first.pid);
  EXPECT_EQ(ReadText(kept), "{}");
}

TEST_F(LocalProviderTest, RebootRestartsOnSameDisk) {
  LaunchRequest request = ProductRequest();
  local::LocalState first = Create(request);
  ASSERT_TRUE(WaitReady(request));
  std::string kept = SystemDir(request.system_id) + "/home/data.csv";
  std::ofstream(kept) << "a,b\n";

  auto rebooted = provider_->Reboot(request, systems_[request.system_id]);
  ASSERT_TRUE(rebooted) << rebooted.error().message;
  Remember(request.system_id, *rebooted);
  ASSERT_TRUE(WaitReady(request));
  auto second = local::ParseState(*rebooted);
  ASSERT_TRUE(second);
  EXPECT_FALSE(local::IsProcessAlive(first.pid, first.start_ticks));
  EXPECT_TRUE(local::IsProcessAlive(second->pid, second->start_ticks));
  EXPECT_TRUE(fs::exists(kept));
}

TEST_F(LocalProviderTest, RestartedProviderAdoptsRunningProcess) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));
  std::vector<int64_t> before = TaggedProcesses(request.system_id);
  EXPECT_EQ(before.size(), 2u);

  // A new provider over the same data directory stands for a restarted Puddle.
  LocalProvider restarted(options_);
  auto observation = restarted.Poll(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(observation);
  EXPECT_EQ(observation->vm_status, VmStatus::kRunning);
  EXPECT_EQ(observation->address, "127.0.0.2:" + std::to_string(state.port));
  EXPECT_EQ(restarted.CheckProduct(request, systems_[request.system_id]), ProductStatus::kReady);

  auto again = restarted.Create(request);
  ASSERT_TRUE(again) << again.error().message;
  auto adopted = local::ParseState(*again);
  ASSERT_TRUE(adopted);
  EXPECT_EQ(adopted->pid, state.pid);
  EXPECT_EQ(adopted->supervisor_pid, state.supervisor_pid);
  EXPECT_EQ(adopted->port, state.port);
  EXPECT_EQ(TaggedProcesses(request.system_id), before);
}

TEST_F(LocalProviderTest, CreateAdoptsWithoutRecord) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  // With the record's process ids gone, the scan of /proc finds the processes
  // by their tag; the record still contains the port.
  std::string record_path = options_.data_dir + "/local/systems/" + request.system_id + ".json";
  auto record = local::ParseRecord(ReadText(record_path));
  ASSERT_TRUE(record);
  record->state.pid = 1;
  record->state.start_ticks = 1;
  ASSERT_TRUE(local::WriteFileAtomically(record_path, local::SerializeRecord(*record), 0600));

  auto again = provider_->Create(request);
  ASSERT_TRUE(again) << again.error().message;
  auto adopted = local::ParseState(*again);
  ASSERT_TRUE(adopted);
  EXPECT_EQ(adopted->pid, state.pid);
  EXPECT_EQ(adopted->supervisor_pid, state.supervisor_pid);
  EXPECT_EQ(TaggedProcesses(request.system_id).size(), 2u);

  // With no record at all, Start takes the port from the core's state.
  ASSERT_EQ(unlink(record_path.c_str()), 0);
  auto started = provider_->Start(request, systems_[request.system_id]);
  ASSERT_TRUE(started) << started.error().message;
  auto restarted = local::ParseState(*started);
  ASSERT_TRUE(restarted);
  EXPECT_EQ(restarted->pid, state.pid);
  EXPECT_EQ(restarted->port, state.port);
  EXPECT_EQ(TaggedProcesses(request.system_id).size(), 2u);
  // The adopted record found the system's cgroups again, so Delete removes them.
  auto rebuilt = local::ParseRecord(ReadText(record_path));
  ASSERT_TRUE(rebuilt);
  if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0) {
    EXPECT_EQ(rebuilt->cgroups.size(), 3u);
  }
}

TEST_F(LocalProviderTest, SigkilledProductReportsSignal) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  ASSERT_EQ(kill(static_cast<pid_t>(state.pid), SIGKILL), 0);
  Observation observation;
  ASSERT_TRUE(WaitFor([&] {
    auto polled = provider_->Poll(request.system_id, systems_[request.system_id]);
    if (polled) observation = *polled;
    return polled && polled->gone != GoneReason::kNone;
  }, 10s));
  EXPECT_EQ(observation.gone, GoneReason::kProcessExited);
  EXPECT_EQ(observation.vm_status, VmStatus::kStopped);
  EXPECT_EQ(observation.exit_description, "killed by signal 9");
  EXPECT_NE(observation.last_log_lines.find("listening on"), std::string::npos)
      << observation.last_log_lines;
  // The supervisor recorded the exit and ended.
  EXPECT_TRUE(WaitFor([&] { return TaggedProcesses(request.system_id).empty(); }, 10s));
}

TEST_F(LocalProviderTest, ProductThatExitsReportsStatusAndLog) {
  LaunchRequest request = ProductRequest({"--exit-code=3"});
  Create(request);

  Observation observation;
  ASSERT_TRUE(WaitFor([&] {
    auto polled = provider_->Poll(request.system_id, systems_[request.system_id]);
    if (polled) observation = *polled;
    return polled && polled->gone != GoneReason::kNone;
  }, 10s));
  EXPECT_EQ(observation.gone, GoneReason::kProcessExited);
  EXPECT_EQ(observation.exit_description, "exit status 3");
  EXPECT_NE(observation.last_log_lines.find("failing on purpose with exit code 3"),
            std::string::npos)
      << observation.last_log_lines;

  auto logs = provider_->ReadLogs(request.system_id, systems_[request.system_id], 1);
  ASSERT_TRUE(logs);
  EXPECT_EQ(*logs, "puddle-supervisor: product exited: exit status 3\n");
}

TEST_F(LocalProviderTest, BootIdMismatchReportsHostRestarted) {
  LaunchRequest request = ProductRequest();
  Create(request);
  ASSERT_TRUE(WaitReady(request));

  std::string fake_boot_id = root_ + "/boot_id";
  std::ofstream(fake_boot_id) << "00000000-0000-0000-0000-000000000000\n";
  LocalProviderOptions after_reboot = options_;
  after_reboot.boot_id_path = fake_boot_id;
  LocalProvider rebooted(after_reboot);
  auto observation = rebooted.Poll(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(observation);
  EXPECT_EQ(observation->gone, GoneReason::kHostRestarted);
  EXPECT_EQ(observation->vm_status, VmStatus::kStopped);
}

TEST_F(LocalProviderTest, DeleteLeavesNoProcessAndNoDirectory) {
  LaunchRequest request = ProductRequest({"--spawn-session-child"});
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));
  std::string log = ReadText(SystemDir(request.system_id) + "/product.log");
  size_t at = log.find("session child: ");
  ASSERT_NE(at, std::string::npos) << log;
  int64_t session_child = std::stoll(log.substr(at + 15));
  auto child_stat = local::ReadProcessStat(session_child);
  ASSERT_TRUE(child_stat);
  // The child left the product's process group, as Jupyter kernels do.
  EXPECT_NE(child_stat->pgid, state.supervisor_pid);

  ASSERT_TRUE(provider_->Delete(request.system_id, systems_[request.system_id]));
  systems_.erase(request.system_id);
  EXPECT_TRUE(TaggedProcesses(request.system_id).empty());
  EXPECT_FALSE(local::IsProcessAlive(session_child, child_stat->start_ticks));
  EXPECT_FALSE(fs::exists(SystemDir(request.system_id)));
  EXPECT_FALSE(fs::exists(options_.data_dir + "/local/systems/" + request.system_id + ".json"));
}

TEST_F(LocalProviderTest, StopEscalatesToSigkill) {
  options_.stop_grace_seconds = 1;
  provider_ = std::make_unique<LocalProvider>(options_);
  LaunchRequest request = ProductRequest({"--ignore-sigterm"});
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  auto started = std::chrono::steady_clock::now();
  auto stopped = provider_->Stop(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(stopped) << stopped.error().message;
  Remember(request.system_id, *stopped);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_FALSE(local::IsProcessAlive(state.pid, state.start_ticks));
  EXPECT_TRUE(TaggedProcesses(request.system_id).empty());
}

TEST_F(LocalProviderTest, TokenInCommandIsRejected) {
  LaunchRequest request = ProductRequest({"--token={token}"});
  auto state = provider_->Create(request);
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().code, ErrorCode::kValidationFailed);
  EXPECT_NE(state.error().message.find("{token}"), std::string::npos) << state.error().message;
  EXPECT_FALSE(fs::exists(SystemDir(request.system_id)));
  EXPECT_TRUE(TaggedProcesses(request.system_id).empty());
}

TEST_F(LocalProviderTest, MissingProductCommandFailsCreate) {
  LaunchRequest request = ProductRequest();
  request.image.launch.command = {"/nonexistent/product", "--port={port}"};
  auto state = provider_->Create(request);
  ASSERT_FALSE(state);
  EXPECT_NE(state.error().message.find("/nonexistent/product"), std::string::npos)
      << state.error().message;
  Remember(request.system_id, "");
  EXPECT_TRUE(TaggedProcesses(request.system_id).empty());
  auto logs = provider_->ReadLogs(request.system_id, "", 5);
  ASSERT_TRUE(logs);
  EXPECT_NE(logs->find("/nonexistent/product"), std::string::npos) << *logs;
}

TEST_F(LocalProviderTest, OwnerOutsideUidRangeIsRefused) {
  LaunchRequest request = ProductRequest();
  request.owner_number = kUidMax - kUidMin + 1;
  auto state = provider_->Create(request);
  ASSERT_FALSE(state);
  EXPECT_NE(state.error().message.find("uidRange"), std::string::npos) << state.error().message;
  request.owner_number = 0;
  EXPECT_FALSE(provider_->Create(request));
}

TEST_F(LocalProviderTest, PortsSkipBusyAndOtherSystems) {
  // Holds the first port of a small range, as another program would.
  int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &address.sin_addr);
  int first_port = 0;
  for (int port = 24000; port < 24100 && first_port == 0; port += 10) {
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(busy, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) first_port = port;
  }
  ASSERT_NE(first_port, 0);
  options_.port_min = first_port;
  options_.port_max = first_port + 9;
  provider_ = std::make_unique<LocalProvider>(options_);

  LaunchRequest one = ProductRequest();
  LaunchRequest two = ProductRequest();
  two.owner_number = 8;
  local::LocalState first = Create(one);
  local::LocalState second = Create(two);
  close(busy);
  EXPECT_NE(first.port, first_port);
  EXPECT_NE(second.port, first_port);
  EXPECT_NE(first.port, second.port);
  EXPECT_TRUE(WaitReady(one));
  EXPECT_TRUE(WaitReady(two));
}

TEST_F(LocalProviderTest, ListOwnedFindsTaggedProcesses) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));
  auto owned = provider_->ListOwned();
  ASSERT_TRUE(owned);
  ASSERT_EQ(owned->size(), 1u);
  EXPECT_EQ((*owned)[0].system_id, request.system_id);
  EXPECT_EQ((*owned)[0].resource_id, "pid:" + std::to_string(state.supervisor_pid));
}

TEST_F(LocalProviderTest, CgroupLimitsApplied) {
  if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) != 0) {
    GTEST_SKIP() << "this host has no cgroup v1 memory controller";
  }
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  std::istringstream cgroups(ReadText("/proc/" + std::to_string(state.pid) + "/cgroup"));
  std::string line;
  std::map<std::string, std::string> paths;
  while (std::getline(cgroups, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    paths[line.substr(first + 1, second - first - 1)] = line.substr(second + 1);
  }
  std::string suffix = "/" + request.system_id;
  ASSERT_TRUE(paths["memory"].ends_with(suffix)) << paths["memory"];
  ASSERT_TRUE(paths["pids"].ends_with(suffix)) << paths["pids"];
  ASSERT_TRUE(paths["cpu"].ends_with(suffix)) << paths["cpu"];
  EXPECT_EQ(std::stoll(ReadText("/sys/fs/cgroup/memory" + paths["memory"] +
                                "/memory.limit_in_bytes")),
            512ll * 1024 * 1024);
  EXPECT_EQ(std::stoll(ReadText("/sys/fs/cgroup/pids" + paths["pids"] + "/pids.max")),
            options_.pids_max);
  EXPECT_EQ(std::stoll(ReadText("/sys/fs/cgroup/cpu" + paths["cpu"] + "/cpu.cfs_quota_us")),
            std::stoll(ReadText("/sys/fs/cgroup/cpu" + paths["cpu"] + "/cpu.cfs_period_us")));

  // Delete removes the cgroups with the system.
  std::string memory_cgroup = "/sys/fs/cgroup/memory" + paths["memory"];
  ASSERT_TRUE(provider_->Delete(request.system_id, systems_[request.system_id]));
  systems_.erase(request.system_id);
  EXPECT_FALSE(fs::exists(memory_cgroup));
}

TEST_F(LocalProviderTest, ReadLogsReturnsLastLines) {
  LaunchRequest request = ProductRequest();
  Create(request);
  ASSERT_TRUE(WaitReady(request));
  auto logs = provider_->ReadLogs(request.system_id, systems_[request.system_id], 1);
  ASSERT_TRUE(logs);
  // The last line is the health check the product logged.
  EXPECT_NE(logs->find("GET /systems/" + request.system_id + "/api/status"), std::string::npos)
      << *logs;
  EXPECT_EQ(std::count(logs->begin(), logs->end(), '\n'), 1);
}

TEST(LaunchPlanTest, ExpandsPlaceholdersAndKeepsTokenOutOfArgv) {
  LaunchSpec spec;
  spec.command = {"serve", "--listen={address}:{port}", "--base={basePath}", "--dir={dataDir}",
                  "--id={systemId}", "--json={\"a\": 1}"};
  spec.env = {{"TOKEN", "{token}"}, {"WHERE", "{dataDir}/x"}, {"PATH", "/opt/bin"},
              {"PUDDLE_SYSTEM_ID", "forged"}};
  local::PlaceholderValues values{"20001", "127.0.0.2", "/systems/s1/", "/data/s1/home", "s1",
                                  "secret"};
  local::BaseEnvironment base{"/data/s1/home", "alice", "inst", "s1"};
  auto plan = local::BuildLaunchPlan(spec, values, base);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->argv, (std::vector<std::string>{"serve", "--listen=127.0.0.2:20001",
                                                  "--base=/systems/s1/", "--dir=/data/s1/home",
                                                  "--id=s1", "--json={\"a\": 1}"}));
  std::set<std::string> environment(plan->environment.begin(), plan->environment.end());
  EXPECT_TRUE(environment.contains("TOKEN=secret"));
  EXPECT_TRUE(environment.contains("WHERE=/data/s1/home/x"));
  EXPECT_TRUE(environment.contains("PATH=/opt/bin"));
  EXPECT_TRUE(environment.contains("HOME=/data/s1/home"));
  EXPECT_TRUE(environment.contains("PUDDLE_SYSTEM_ID=s1"));
  EXPECT_TRUE(environment.contains("PUDDLE_INSTALLATION_ID=inst"));

  spec.command.push_back("--token={token}");
  auto rejected = local::BuildLaunchPlan(spec, values, base);
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(rejected.error().field, "launch.command");
}

TEST_F(LocalProviderTest, CheckSystemTypeRefusesGpusWithoutDevice) {
  options_.gpu_device_path = root_ + "/no-such-nvidia0";
  LocalProvider provider(options_);
  SystemType type;
  type.id = "gpu-large";
  type.gpus = 1;
  auto status = provider.CheckSystemType(type);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(status.error().field, "systemType");
  type.gpus = 0;
  EXPECT_TRUE(provider.CheckSystemType(type));
}

TEST_F(LocalProviderTest, CheckUidRangeRefusesOverlap) {
  EXPECT_FALSE(LocalProvider::CheckUidRange(0, 100));
  EXPECT_FALSE(LocalProvider::CheckUidRange(500, 400));

  // Every account in /etc/passwd (root at least) must be outside the range.
  auto overlap = LocalProvider::CheckUidRange(1, 70000);
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().field, "providers.local.uidRange");

  std::string passwd = root_ + "/passwd";
  std::string group = root_ + "/group";
  std::ofstream(passwd) << "root:x:0:0:root:/root:/bin/bash\nbob:x:200123:200123::/home/bob:/bin/sh\n";
  std::ofstream(group) << "root:x:0:\n";
  auto named = LocalProvider::CheckUidRange(kUidMin, kUidMax, passwd, group);
  ASSERT_FALSE(named);
  EXPECT_NE(named.error().message.find("200123"), std::string::npos) << named.error().message;
  EXPECT_NE(named.error().message.find("bob"), std::string::npos) << named.error().message;

  std::ofstream(passwd) << "root:x:0:0:root:/root:/bin/bash\n";
  std::ofstream(group) << "root:x:0:\nstaff:x:200050:\n";
  EXPECT_FALSE(LocalProvider::CheckUidRange(kUidMin, kUidMax, passwd, group));
  EXPECT_TRUE(LocalProvider::CheckUidRange(kUidMin, kUidMax));
}

TEST_F(LocalProviderTest, RealJupyterNotebookReady) {
  if (access("/usr/bin/jupyter-notebook", X_OK) != 0) {
    GTEST_SKIP() << "jupyter-notebook is not installed; run scripts/setup.sh";
  }
  LaunchRequest request = ProductRequest();
  request.image.product = "jupyter";
  request.image.launch.command = {
      "jupyter-notebook", "--no-browser", "--ip={address}", "--port={port}",
      "--NotebookApp.port_retries=0", "--NotebookApp.base_url={basePath}",
      "--notebook-dir={dataDir}"};
  request.image.launch.env = {
      {"JUPYTER_TOKEN", "{token}"},
      {"JUPYTER_CONFIG_DIR", "{dataDir}/.jupyter"},
      {"JUPYTER_DATA_DIR", "{dataDir}/.local/share/jupyter"},
      {"JUPYTER_RUNTIME_DIR", "{dataDir}/.local/share/jupyter/runtime"},
      {"IPYTHONDIR", "{dataDir}/.ipython"}};
  request.system_type.memory_mib = 1024;
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request, 60s))
      << ReadText(SystemDir(request.system_id) + "/product.log");

  std::string url = "http://127.0.0.2:" + std::to_string(state.port) + "/systems/" +
                    request.system_id + "/api/status";
  HttpResponse response = HttpGet(url, "token " + request.product_token);
  EXPECT_EQ(response.status, 200);
  EXPECT_NE(response.body.find("\"started\""), std::string::npos) << response.body;
  EXPECT_NE(response.body.find("\"kernels\""), std::string::npos) << response.body;
  EXPECT_EQ(HttpGet(url, "token wrong").status, 403);
  EXPECT_EQ(ReadText("/proc/" + std::to_string(state.pid) + "/cmdline").find(request.product_token),
            std::string::npos);

  // A kernel runs in a session of its own, outside the product's process
  // group; stopping the system must end it too.
  std::string kernels = "http://127.0.0.2:" + std::to_string(state.port) + "/systems/" +
                        request.system_id + "/api/kernels";
  HttpResponse kernel = HttpRequest("POST", kernels, "token " + request.product_token);
  ASSERT_EQ(kernel.status, 201) << kernel.body;
  ASSERT_TRUE(WaitFor([&] { return TaggedProcesses(request.system_id).size() >= 3; }, 30s));
  std::vector<int64_t> escaped;
  for (int64_t pid : TaggedProcesses(request.system_id)) {
    auto stat = local::ReadProcessStat(pid);
    if (stat && stat->pgid != state.supervisor_pid) escaped.push_back(pid);
  }
  EXPECT_FALSE(escaped.empty());

  auto stopped = provider_->Stop(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(stopped) << stopped.error().message;
  Remember(request.system_id, *stopped);
  EXPECT_TRUE(TaggedProcesses(request.system_id).empty());
}

}  // namespace
}  // namespace puddle
