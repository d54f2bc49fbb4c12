// Local systems in their own network namespaces, against real processes,
// real namespaces and real iptables rules.
//
// No packet can leave the machine: each test first moves the test thread
// into a network namespace of its own (unshare), which is Puddle's "host"
// here, with only loopback and a veth to a second namespace, "outside". There
// the test puts the metadata address 169.254.169.254, an allow-listed
// listener, a listener that is not allow-listed, and a remote database and
// Redis. On the test's host it runs listeners standing in for Puddle's
// database, Redis, Puddle itself and another host service. The system
// namespaces, veths and rules the provider makes live inside the test's
// host namespace and are removed by TearDown, which also deletes every
// namespace name the test created.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/ids.h"
#include "providers/local/firewall.h"
#include "providers/local/health_check.h"
#include "providers/local/local_provider.h"
#include "providers/local/network.h"
#include "providers/local/process_table.h"
#include "providers/local/provider_state.h"

namespace puddle {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

constexpr int64_t kUidMin = 200000;
constexpr int64_t kUidMax = 265535;
// Addresses inside the test's own namespaces (documentation ranges).
constexpr const char* kHostUplink = "192.0.2.1";
constexpr const char* kOutsideUplink = "192.0.2.2";
constexpr const char* kMetadata = "169.254.169.254";
constexpr const char* kAllowed = "198.51.100.10";
constexpr const char* kNotAllowed = "198.51.100.20";
constexpr const char* kRemoteDatabase = "203.0.113.5";
constexpr const char* kRemoteRedis = "203.0.113.6";
constexpr int kServicePort = 8080;

std::string Shell(const std::string& command, int* exit_status = nullptr) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  size_t count;
  while ((count = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, count);
  int status = pclose(pipe);
  if (exit_status != nullptr) *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

sockaddr_in Ipv4(const std::string& address, int port) {
  sockaddr_in socket_address{};
  socket_address.sin_family = AF_INET;
  socket_address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.c_str(), &socket_address.sin_addr);
  return socket_address;
}

// A listening TCP socket, made in the network namespace at `namespace_path`
// (the calling thread's when empty). The kernel completes handshakes
// without accept(), so a connect() to it succeeds.
class Listener {
 public:
  Listener(const std::string& address, int port, const std::string& namespace_path = "") {
    auto make = [&] {
      fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      int enable = 1;
      setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &enable, sizeof enable);
      sockaddr_in bound = Ipv4(address, port);
      if (bind(fd_, reinterpret_cast<sockaddr*>(&bound), sizeof bound) != 0 ||
          listen(fd_, 64) != 0) {
        error_ = std::strerror(errno);
      }
    };
    if (namespace_path.empty()) {
      make();
      return;
    }
    // setns changes only the calling thread, so a helper thread makes the
    // socket, which stays in that namespace.
    std::thread helper([&] {
      int ns = open(namespace_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
        error_ = "setns " + namespace_path + ": " + std::strerror(errno);
      } else {
        make();
      }
      if (ns >= 0) close(ns);
    });
    helper.join();
  }
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  const std::string& error() const { return error_; }

  // The peer address of a pending connection, or "" when none is pending.
  std::string AcceptPeer() {
    sockaddr_in peer{};
    socklen_t length = sizeof peer;
    int connection = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC);
    if (connection < 0) return "";
    close(connection);
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
    return text;
  }

 private:
  int fd_ = -1;
  std::string error_;
};

// Connects to address:port from a forked child that joins the namespace at
// `namespace_path` and drops to `uid`, as a program of the system would.
// Returns 0 when connected, else the errno of connect() (ETIMEDOUT after
// 3 s), or -1 when the child could not set itself up.
int ConnectFrom(const std::string& namespace_path, uid_t uid, const std::string& address,
                int port) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    int result = -1;
    int ns = open(namespace_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns >= 0 && setns(ns, CLONE_NEWNET) == 0 && setgroups(0, nullptr) == 0 &&
        setresgid(uid, uid, uid) == 0 && setresuid(uid, uid, uid) == 0) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      sockaddr_in target = Ipv4(address, port);
      result = 0;
      if (connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
        result = errno;
        if (result == EINPROGRESS) {
          pollfd wait{fd, POLLOUT, 0};
          result = ETIMEDOUT;
          if (poll(&wait, 1, 3000) == 1) {
            socklen_t size = sizeof result;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &result, &size);
          }
        }
      }
    }
    (void)!write(report[1], &result, sizeof result);
    _exit(0);
  }
  close(report[1]);
  int result = -1;
  if (read(report[0], &result, sizeof result) != sizeof result) result = -1;
  close(report[0]);
  waitpid(pid, nullptr, 0);
  return result;
}

std::string Describe(int result) {
  if (result == 0) return "connected";
  if (result < 0) return "the connecting child failed";
  return std::strerror(result);
}

size_t DiscardBody(char*, size_t size, size_t count, void*) { return size * count; }

long HttpStatus(const std::string& url, const std::string& authorization) {
  CURL* curl = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, ("Authorization: " + authorization).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardBody);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return status;
}

class NetworkIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    if (access("/usr/sbin/ip", X_OK) != 0) GTEST_SKIP() << "iproute2's ip is not installed";

    // The test's own "host": every namespace, veth and rule below lives in it.
    original_namespace_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(original_namespace_, 0) << std::strerror(errno);
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "unshare: " << std::strerror(errno);
    in_test_host_ = true;
    id_ = "nt" + NewId(10);
    outside_ = "puddle-test-" + id_ + "-outside";
    Run("ip link set lo up");
    Run("ip netns add " + outside_);
    Run("ip link add up" + id_.substr(2, 8) + " type veth peer name eth0 netns " + outside_);
    uplink_ = "up" + id_.substr(2, 8);
    Run("ip addr add " + std::string(kHostUplink) + "/30 dev " + uplink_);
    Run("ip link set " + uplink_ + " up");
    Run("ip -n " + outside_ + " addr add " + kOutsideUplink + "/30 dev eth0");
    Run("ip -n " + outside_ + " link set eth0 up");
    Run("ip -n " + outside_ + " link set lo up");
    for (const char* address : {kMetadata, kAllowed, kNotAllowed, kRemoteDatabase, kRemoteRedis}) {
      Run("ip -n " + outside_ + " addr add " + address + "/32 dev lo");
    }
    Run("ip -n " + outside_ + " route add default via " + kHostUplink);
    Run("ip route add default via " + std::string(kOutsideUplink));
    // As an admin would for an allow list: replies from the uplink may be
    // forwarded back to the systems.
    std::ofstream("/proc/sys/net/ipv4/conf/" + uplink_ + "/forwarding") << "1";

    const std::string outside_path = "/run/netns/" + outside_;
    for (const char* address : {kMetadata, kAllowed, kNotAllowed}) {
      outside_listeners_[address] =
          std::make_unique<Listener>(address, kServicePort, outside_path);
    }
    outside_listeners_[kRemoteDatabase] = std::make_unique<Listener>(kRemoteDatabase, 5432, outside_path);
    outside_listeners_[kRemoteRedis] = std::make_unique<Listener>(kRemoteRedis, 6379, outside_path);
    for (const auto& [address, listener] : outside_listeners_) {
      ASSERT_EQ(listener->error(), "") << address;
    }
    // Puddle's database, Redis, Puddle itself and another service of the
    // host, on every address of the host.
    for (int port : {kDatabasePort, kRedisPort, kPuddlePort, kHostServicePort}) {
      host_listeners_.push_back(std::make_unique<Listener>("0.0.0.0", port));
      ASSERT_EQ(host_listeners_.back()->error(), "") << port;
    }

    // Files products run must not lie under /tmp, which each system sees
    // as its own empty tmpfs.
    char pattern[] = "/var/tmp/puddle-network-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
    fs::create_directories(root_ + "/bin");
    product_path_ = root_ + "/bin/test_product.py";
    fs::copy_file(PUDDLE_TEST_PRODUCT, product_path_);
    ASSERT_EQ(chmod(product_path_.c_str(), 0755), 0);

    options_.data_dir = root_ + "/data";
    options_.installation_id = id_;
    options_.uid_min = kUidMin;
    options_.uid_max = kUidMax;
    options_.stop_grace_seconds = 5;
    options_.supervisor_executable = PUDDLE_TEST_SUPERVISOR;
    options_.network_isolation = true;
    options_.private_tmp = true;
    // Each forbidden destination is also allow-listed, to show that the
    // denials win; kAllowed is the one that must be reachable.
    options_.network.allow = {std::string(kAllowed) + ":" + std::to_string(kServicePort),
                              "203.0.113.0/24",
                              "169.254.169.254/32",
                              std::string(kHostUplink) + "/32",
                              "10.213.0.0/16"};
    options_.network.denied = {"127.0.0.1:" + std::to_string(kPuddlePort),
                               "127.0.0.1:" + std::to_string(kDatabasePort),
                               "127.0.0.1:" + std::to_string(kRedisPort),
                               std::string(kRemoteDatabase) + ":5432",
                               std::string(kRemoteRedis) + ":6379"};
    provider_ = std::make_unique<LocalProvider>(options_);
    ASSERT_TRUE(provider_->NetworkIsolated()) << provider_->NetworkFallbackReason();
  }

  void TearDown() override {
    if (!in_test_host_) return;
    if (provider_) {
      for (const auto& [id, state] : systems_) {
        auto deleted = provider_->Delete(id, state);
        EXPECT_TRUE(deleted) << "delete " << id << ": " << (deleted ? "" : deleted.error().message);
      }
      auto owned = provider_->ListOwned();
      ASSERT_TRUE(owned);
      for (const auto& resource : *owned) {
        ADD_FAILURE() << "left behind: " << resource.resource_id << " of " << resource.system_id;
      }
    }
    local::SystemNetworks networks(TestNetworkOptions());
    auto removed = networks.RemoveRules();
    EXPECT_TRUE(removed) << (removed ? "" : removed.error().message);
    EXPECT_THAT(Shell("iptables -w 10 -S; iptables -w 10 -t nat -S"), Not(HasSubstr("PUDDLE-")));
    // Every namespace name the test made goes, even after a failure.
    for (const auto& entry : fs::directory_iterator("/run/netns")) {
      std::string name = entry.path().filename();
      if (name.find(id_) == std::string::npos) continue;
      if (name != outside_) ADD_FAILURE() << "network namespace left behind: " << name;
      Shell("ip netns delete " + name);
    }
    outside_listeners_.clear();
    host_listeners_.clear();
    EXPECT_EQ(setns(original_namespace_, CLONE_NEWNET), 0) << std::strerror(errno);
    close(original_namespace_);
    std::error_code error;
    if (!root_.empty()) fs::remove_all(root_, error);
  }

  void Run(const std::string& command) {
    int status = 0;
    std::string output = Shell(command, &status);
    ASSERT_EQ(status, 0) << command << ": " << output;
  }

  local::NetworkOptions TestNetworkOptions() const {
    local::NetworkOptions network = options_.network;
    network.installation_id = options_.installation_id;
    return network;
  }

  LaunchRequest ProductRequest(int64_t owner_number = 7,
                               const std::vector<std::string>& extra_arguments = {}) {
    LaunchRequest request;
    request.installation_id = options_.installation_id;
    request.system_id = "nt-" + NewId(10);
    request.owner_id = "user-" + std::to_string(owner_number);
    request.owner_username = "user" + std::to_string(owner_number);
    request.owner_number = owner_number;
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

  local::LocalState Create(const LaunchRequest& request) {
    auto state = provider_->Create(request);
    EXPECT_TRUE(state) << (state ? "" : state.error().message);
    if (!state) return {};
    systems_[request.system_id] = *state;
    auto parsed = local::ParseState(*state);
    EXPECT_TRUE(parsed);
    return parsed ? *parsed : local::LocalState{};
  }

  bool WaitReady(const LaunchRequest& request) {
    return WaitFor([&] {
      return provider_->CheckProduct(request, systems_[request.system_id]) == ProductStatus::kReady;
    }, 30s);
  }

  std::string NamespacePath(const std::string& system_id) {
    return "/run/netns/puddle-" + id_ + "-" + system_id;
  }

  static constexpr int kDatabasePort = 15432;
  static constexpr int kRedisPort = 16379;
  static constexpr int kPuddlePort = 18443;
  static constexpr int kHostServicePort = 18080;

  int original_namespace_ = -1;
  bool in_test_host_ = false;
  std::string id_;
  std::string outside_;
  std::string uplink_;
  std::map<std::string, std::unique_ptr<Listener>> outside_listeners_;
  std::vector<std::unique_ptr<Listener>> host_listeners_;
  std::string root_;
  std::string product_path_;
  LocalProviderOptions options_;
  std::unique_ptr<LocalProvider> provider_;
  std::map<std::string, std::string> systems_;
};

TEST_F(NetworkIsolationTest, ProductListensOnNamespaceAddress) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(state.running);
  ASSERT_TRUE(WaitReady(request));

  EXPECT_THAT(state.address, ::testing::StartsWith("10.213."));
  EXPECT_GE(state.subnet, 0);
  auto observation = provider_->Poll(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(observation);
  EXPECT_EQ(observation->address, state.address + ":" + std::to_string(state.port));

  // The product and its supervisor run in the system's namespace.
  struct stat namespace_file{};
  ASSERT_EQ(stat(NamespacePath(request.system_id).c_str(), &namespace_file), 0);
  for (int64_t pid : {state.pid, state.supervisor_pid}) {
    auto inside = local::ProcessNamespace(pid);
    ASSERT_TRUE(inside) << pid;
    EXPECT_EQ(inside->inode, namespace_file.st_ino) << pid;
  }

  // Puddle, on the host, reaches the product at that address.
  std::string url = "http://" + observation->address + "/systems/" + request.system_id +
                    "/api/status";
  EXPECT_EQ(HttpStatus(url, "token " + request.product_token), 200);
}

TEST_F(NetworkIsolationTest, SystemReachesOnlyAllowedDestinations) {
  LaunchRequest first = ProductRequest(7);
  LaunchRequest second = ProductRequest(8);
  local::LocalState state = Create(first);
  local::LocalState other = Create(second);
  ASSERT_TRUE(WaitReady(first));
  ASSERT_TRUE(WaitReady(second));
  const std::string inside = NamespacePath(first.system_id);
  const uid_t uid = static_cast<uid_t>(state.uid);
  const std::string host_end = local::SystemNetworks(TestNetworkOptions()).AddressesOf(state.subnet).host;

  struct Case {
    std::string what;
    std::string address;
    int port;
  };
  const std::vector<Case> forbidden = {
      {"the metadata address", kMetadata, kServicePort},
      {"a destination not allow-listed", kNotAllowed, kServicePort},
      {"Puddle's remote database", kRemoteDatabase, 5432},
      {"Puddle's remote Redis", kRemoteRedis, 6379},
      {"the database through the host's veth end", host_end, kDatabasePort},
      {"the database through the host's uplink", kHostUplink, kDatabasePort},
      {"Redis through the host's veth end", host_end, kRedisPort},
      {"Puddle through the host's veth end", host_end, kPuddlePort},
      {"a host service through the host's veth end", host_end, kHostServicePort},
      {"a host service through the host's uplink", kHostUplink, kHostServicePort},
      {"the other system's product", other.address, other.port},
      {"the other system's host end", local::SystemNetworks(TestNetworkOptions()).AddressesOf(other.subnet).host,
       kHostServicePort},
  };
  for (const auto& forbidden_case : forbidden) {
    int result = ConnectFrom(inside, uid, forbidden_case.address, forbidden_case.port);
    EXPECT_NE(result, 0) << forbidden_case.what << " (" << forbidden_case.address << ":"
                         << forbidden_case.port << ") is reachable";
    EXPECT_NE(result, -1) << forbidden_case.what << ": " << Describe(result);
  }

  // The allow-listed listener is reachable, through NAT on the host.
  int allowed = ConnectFrom(inside, uid, kAllowed, kServicePort);
  EXPECT_EQ(allowed, 0) << Describe(allowed);
  std::string peer;
  WaitFor([&] { return !(peer = outside_listeners_[kAllowed]->AcceptPeer()).empty(); }, 5s);
  EXPECT_EQ(peer, kHostUplink);

  // Nothing forbidden was ever accepted by a listener outside.
  for (const char* address : {kMetadata, kNotAllowed, kRemoteDatabase, kRemoteRedis}) {
    EXPECT_EQ(outside_listeners_[address]->AcceptPeer(), "") << address;
  }
}

TEST_F(NetworkIsolationTest, TokenNeverSentToForeignListener) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  // Root listens on another port of the system's address, inside its
  // namespace; a state naming that port must not make Puddle send the token.
  int foreign_port = state.port == options_.port_max ? state.port - 1 : state.port + 1;
  Listener foreign(state.address, foreign_port, NamespacePath(request.system_id));
  ASSERT_EQ(foreign.error(), "");
  local::LocalState pointed = state;
  pointed.port = foreign_port;
  std::string pointed_state = local::SerializeState(pointed);
  EXPECT_EQ(provider_->CheckProduct(request, pointed_state), ProductStatus::kUnhealthy);
  EXPECT_FALSE(provider_->GetFromProduct(request, pointed_state, "api/status"));
  EXPECT_EQ(foreign.AcceptPeer(), "") << "the token was sent to root's listener";

  // The product's own listener, read from the namespace's socket table.
  std::string proc_net = "/proc/" + std::to_string(state.supervisor_pid) + "/net";
  EXPECT_TRUE(local::ListenerOwnedBy(state.address, state.port, static_cast<uid_t>(state.uid),
                                     proc_net));
  EXPECT_FALSE(local::ListenerOwnedBy(state.address, state.port, static_cast<uid_t>(state.uid)))
      << "the host's table must not show the namespace's listener";
  EXPECT_TRUE(local::HasListener(state.address, foreign_port, proc_net));
}

TEST_F(NetworkIsolationTest, StopEndsEverythingInNamespace) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));
  const std::string inside = NamespacePath(request.system_id);
  const std::string host_interface =
      local::SystemNetworks(TestNetworkOptions()).HostInterface(request.system_id);

  // A process of the system's uid inside its namespace that carries no tag
  // and is in neither its process group nor its cgroups.
  pid_t stray = fork();
  if (stray == 0) {
    int ns = open(inside.c_str(), O_RDONLY | O_CLOEXEC);
    uid_t uid = static_cast<uid_t>(state.uid);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0 || setgroups(0, nullptr) != 0 ||
        setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) {
      _exit(1);
    }
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    char* argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("600"), nullptr};
    char* envp[] = {nullptr};
    execve("/bin/sleep", argv, envp);
    _exit(1);
  }
  ASSERT_GT(stray, 0);
  ASSERT_TRUE(WaitFor([&] { return local::ProcessNamespace(stray) == local::SystemNetworks(TestNetworkOptions()).NamespaceOf(request.system_id); }, 5s));

  auto stopped = provider_->Stop(request.system_id, systems_[request.system_id]);
  ASSERT_TRUE(stopped) << stopped.error().message;
  systems_[request.system_id] = *stopped;
  int status = 0;
  ASSERT_EQ(waitpid(stray, &status, 0), stray);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the stray process outlived Stop";
  EXPECT_FALSE(fs::exists(inside));
  EXPECT_EQ(if_nametoindex(host_interface.c_str()), 0u) << host_interface << " outlived Stop";

  // Start makes a new namespace and the product serves again.
  auto started = provider_->Start(request, *stopped);
  ASSERT_TRUE(started) << started.error().message;
  systems_[request.system_id] = *started;
  auto restarted = local::ParseState(*started);
  ASSERT_TRUE(restarted);
  EXPECT_EQ(restarted->subnet, state.subnet);
  ASSERT_TRUE(WaitReady(request));
  EXPECT_TRUE(fs::exists(inside));
}

TEST_F(NetworkIsolationTest, RestartedProviderAdoptsNamespace) {
  LaunchRequest request = ProductRequest();
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));

  provider_ = std::make_unique<LocalProvider>(options_);
  auto adopted = provider_->Start(request, systems_[request.system_id]);
  ASSERT_TRUE(adopted) << adopted.error().message;
  auto parsed = local::ParseState(*adopted);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->pid, state.pid);
  EXPECT_EQ(parsed->address, state.address);
  systems_[request.system_id] = *adopted;
  auto observation = provider_->Poll(request.system_id, *adopted);
  ASSERT_TRUE(observation);
  EXPECT_EQ(observation->address, state.address + ":" + std::to_string(state.port));
  EXPECT_EQ(provider_->CheckProduct(request, *adopted), ProductStatus::kReady);
}

TEST_F(NetworkIsolationTest, LeftoverNamespacesAreCleaned) {
  local::SystemNetworks networks(TestNetworkOptions());
  LaunchRequest request = ProductRequest();
  // A crashed Puddle left the namespace and veth of a launch behind, and
  // those of a system it has no record of, on the first subnet.
  ASSERT_TRUE(networks.Create(request.system_id, 40));
  const std::string orphan = "nt-orphan-" + NewId(6);
  ASSERT_TRUE(networks.Create(orphan, 0));
  local::LocalState state = Create(request);
  ASSERT_TRUE(WaitReady(request));
  EXPECT_NE(state.subnet, 0) << "a subnet still on the orphan's veth was handed out";

  // The orphan's namespace goes with Delete.
  ASSERT_TRUE(fs::exists(NamespacePath(orphan)));
  auto owned = provider_->ListOwned();
  ASSERT_TRUE(owned);
  bool listed = false;
  for (const auto& resource : *owned) listed = listed || resource.system_id == orphan;
  EXPECT_TRUE(listed) << "ListOwned does not report the orphaned namespace";
  ASSERT_TRUE(provider_->Delete(orphan, ""));
  EXPECT_FALSE(fs::exists(NamespacePath(orphan)));
  EXPECT_EQ(if_nametoindex(networks.HostInterface(orphan).c_str()), 0u);
}

TEST_F(NetworkIsolationTest, SystemHasPrivateTmp) {
  const std::string marker = "/tmp/puddle-network-test-" + id_;
  std::ofstream(marker) << "host file";
  ASSERT_EQ(chmod(marker.c_str(), 0644), 0);
  LaunchRequest request = ProductRequest(7, {"--try-read", marker});
  Create(request);
  ASSERT_TRUE(WaitReady(request));
  auto logs = provider_->ReadLogs(request.system_id, systems_[request.system_id], 50);
  fs::remove(marker);
  ASSERT_TRUE(logs);
  EXPECT_THAT(*logs, HasSubstr("try-read " + marker + ": denied (No such file or directory)"));
}

TEST_F(NetworkIsolationTest, RealJupyterServesFromNamespace) {
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
  ASSERT_TRUE(WaitFor([&] {
    return provider_->CheckProduct(request, systems_[request.system_id]) == ProductStatus::kReady;
  }, 60s)) << *provider_->ReadLogs(request.system_id, systems_[request.system_id], 40);

  // A kernel talks to the notebook server over the namespace's own loopback.
  std::string base = "http://" + state.address + ":" + std::to_string(state.port) + "/systems/" +
                     request.system_id + "/";
  EXPECT_EQ(HttpStatus(base + "api/status", "token " + request.product_token), 200);
  CURL* curl = curl_easy_init();
  curl_slist* headers =
      curl_slist_append(nullptr, ("Authorization: token " + request.product_token).c_str());
  std::string kernels = base + "api/kernels";
  curl_easy_setopt(curl, CURLOPT_URL, kernels.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardBody);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  EXPECT_EQ(status, 201);
  auto logs = provider_->ReadLogs(request.system_id, systems_[request.system_id], 40);
  ASSERT_TRUE(logs);
  EXPECT_TRUE(WaitFor([&] {
    auto text = provider_->ReadLogs(request.system_id, systems_[request.system_id], 40);
    return text && text->find("Kernel started") != std::string::npos;
  }, 30s)) << *logs;
}

TEST_F(NetworkIsolationTest, RulesInstallOnceAndRemoveCleanly) {
  local::SystemNetworks networks(TestNetworkOptions());
  ASSERT_TRUE(networks.InstallRules());
  ASSERT_TRUE(networks.InstallRules());
  const std::string chain = local::FirewallChainName(id_);
  for (const auto& [table, builtin, target] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"filter", "INPUT", chain + "-IN"},
           {"filter", "FORWARD", chain + "-FWD"},
           {"nat", "POSTROUTING", chain + "-NAT"}}) {
    std::string listing = Shell("iptables -w 10 -t " + table + " -S " + builtin);
    size_t jumps = 0;
    for (size_t at = listing.find("-j " + target); at != std::string::npos;
         at = listing.find("-j " + target, at + 1)) {
      ++jumps;
    }
    EXPECT_EQ(jumps, 1u) << listing;
    // Ahead of every other rule of the built-in chain.
    EXPECT_THAT(listing.substr(listing.find('\n') + 1), ::testing::StartsWith("-A " + builtin))
        << listing;
  }
  ASSERT_TRUE(networks.RemoveRules());
  EXPECT_THAT(Shell("iptables -w 10 -S; iptables -w 10 -t nat -S"), Not(HasSubstr(chain)));
}

TEST(NetworkFallbackTest, MissingIpKeepsListenAddress) {
  LocalProviderOptions options;
  options.data_dir = "/nonexistent";
  options.installation_id = "fallback-" + NewId(8);
  options.network_isolation = true;
  options.network.ip_path = "/nonexistent/ip";
  LocalProvider provider(options);
  EXPECT_FALSE(provider.NetworkIsolated());
  if (geteuid() == 0) EXPECT_THAT(provider.NetworkFallbackReason(), HasSubstr("/nonexistent/ip"));
}

TEST(NetworkOptionsTest, InvalidPoolAndAllowAreRejected) {
  local::NetworkOptions options;
  options.installation_id = "validate-" + NewId(8);
  EXPECT_TRUE(local::SystemNetworks(options).Validate());
  for (const char* cidr : {"10.0.0.0/31", "127.0.0.0/16", "169.254.0.0/16", "10.1.2.3", "x/16"}) {
    options.cidr = cidr;
    EXPECT_FALSE(local::SystemNetworks(options).Validate()) << cidr;
  }
  options.cidr = "10.213.0.0/16";
  for (const char* entry : {"[::1]:80", "2001:db8::/32", "example.org", "10.0.0.0/40"}) {
    options.allow = {entry};
    EXPECT_FALSE(local::SystemNetworks(options).Validate()) << entry;
  }
  options.allow = {"192.0.2.0/24", "192.0.2.7", "pypi.example.org:443"};
  EXPECT_TRUE(local::SystemNetworks(options).Validate());

  local::SystemNetworks networks(options);
  EXPECT_EQ(networks.SubnetCount(), 16384);
  EXPECT_EQ(networks.AddressesOf(0).host, "10.213.0.1");
  EXPECT_EQ(networks.AddressesOf(0).system, "10.213.0.2");
  EXPECT_EQ(networks.AddressesOf(3).system, "10.213.0.14");
  EXPECT_EQ(networks.HostInterface("abc").size(), 15u);
  EXPECT_THAT(networks.HostInterface("abc"), ::testing::StartsWith(networks.InterfacePrefix()));
  EXPECT_NE(networks.HostInterface("abc"), networks.HostInterface("abd"));
  EXPECT_EQ(networks.NamespaceName("abc"), "puddle-" + options.installation_id + "-abc");
}

}  // namespace
}  // namespace puddle
