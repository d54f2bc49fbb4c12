// SystemFirewall against the real iptables and ip6tables of this host.
//
// Runs as root. Each test installs the chain of its own random installation
// id for a uid range no account uses. It connects from forked children that
// drop to a uid in (or outside) that range, and TearDown removes the chain and
// its OUTPUT jump. Every connection goes to a listener the test opened on a
// loopback address. The link-local rules are checked by reading
// `iptables -S`, never by sending a packet there.
#include "providers/local/firewall.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/ids.h"
#include "providers/local/local_provider.h"

namespace puddle::local {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Far from the local provider test's default range, so both can run at once.
constexpr int64_t kUidMin = 310000;
constexpr int64_t kUidMax = 310099;
constexpr uid_t kUidInRange = 310042;
constexpr uid_t kUidAboveRange = 310100;
constexpr uid_t kUidBelowRange = 309999;

// Runs a shell command and returns its output. Only the test uses a shell,
// the firewall runs iptables directly.
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

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) lines.push_back(line);
  return lines;
}

// Rules of OUTPUT that jump to `chain`.
std::vector<std::string> Jumps(const std::string& tool, const std::string& chain) {
  std::vector<std::string> jumps;
  for (const auto& line : Lines(Shell(tool + " -w 10 -S OUTPUT"))) {
    if (line.ends_with("-j " + chain)) jumps.push_back(line);
  }
  return jumps;
}

// A TCP listener on a loopback address. Port 0 picks a free port.
class Listener {
 public:
  Listener(const std::string& address, int port = 0) {
    bool ipv6 = address.find(':') != std::string::npos;
    fd_ = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (ipv6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr);
      length = sizeof *in6;
    } else {
      auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
      in4->sin_family = AF_INET;
      in4->sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, address.c_str(), &in4->sin_addr);
      length = sizeof *in4;
    }
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
        listen(fd_, 16) != 0) {
      error_ = std::strerror(errno);
      return;
    }
    getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length);
    address_ = storage;
    length_ = length;
    port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  const sockaddr_storage& address() const { return address_; }
  socklen_t length() const { return length_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  sockaddr_storage address_{};
  socklen_t length_ = 0;
  std::string error_;
};

// Connects to `listener` from a forked child running as `uid` (root stays
// root) and returns 0 on success or the errno of connect(). Returns -1 when
// the child could not drop privileges or did not report.
int ConnectAs(uid_t uid, const Listener& listener) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    int result = -1;
    if (uid == 0 || (setgroups(0, nullptr) == 0 && setresgid(uid, uid, uid) == 0 &&
                     setresuid(uid, uid, uid) == 0)) {
      int fd = socket(listener.address().ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
      result = 0;
      if (connect(fd, reinterpret_cast<const sockaddr*>(&listener.address()), listener.length()) != 0) {
        result = errno;
        if (result == EINPROGRESS) {
          // A connection that neither completes nor fails in 5 s reports ETIMEDOUT.
          pollfd wait{fd, POLLOUT, 0};
          result = ETIMEDOUT;
          if (poll(&wait, 1, 5000) == 1) {
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
  if (result < 0) return "child failed";
  return std::strerror(result);
}

class FirewallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "installing iptables rules needs root";
    ASSERT_TRUE(LocalProvider::CheckUidRange(kUidMin, kUidMax));
    options_.installation_id = "fwt" + NewId(13);
    options_.uid_min = kUidMin;
    options_.uid_max = kUidMax;
    options_.product_listen_address = "127.0.0.2";
    // An empty resolv.conf, so the host's own name servers do not change the rules.
    resolv_conf_ = std::filesystem::temp_directory_path() /
                   ("puddle-firewall-test-" + options_.installation_id + ".conf");
    std::ofstream(resolv_conf_) << "";
    options_.resolv_conf_path = resolv_conf_.string();
    chain_ = FirewallChainName(options_.installation_id);
  }

  void TearDown() override {
    if (chain_.empty()) return;
    // Some tests point the options at a broken iptables; removal uses the real one.
    FirewallOptions removal = options_;
    removal.iptables_path = FirewallOptions().iptables_path;
    removal.ip6tables_path = FirewallOptions().ip6tables_path;
    SystemFirewall firewall(removal);
    auto removed = firewall.Remove();
    EXPECT_TRUE(removed) << removed.error().message;
    for (const char* tool : {"iptables", "ip6tables"}) {
      EXPECT_THAT(Shell(std::string(tool) + " -w 10 -S"), Not(HasSubstr(chain_))) << tool;
    }
    std::filesystem::remove(resolv_conf_);
  }

  Status Install() {
    SystemFirewall firewall(options_);
    return firewall.Install();
  }

  std::string ChainRules(const std::string& tool) { return Shell(tool + " -w 10 -S " + chain_); }

  FirewallOptions options_;
  std::string chain_;
  std::filesystem::path resolv_conf_;
};

TEST_F(FirewallTest, ChainNameUsesInstallationIdPrefix) {
  EXPECT_EQ(FirewallChainName("abcdefgh2345"), "PUDDLE-abcdefgh");
  SystemFirewall firewall(options_);
  EXPECT_EQ(firewall.chain(), "PUDDLE-" + options_.installation_id.substr(0, 8));
}

TEST_F(FirewallTest, UidInRangeIsRejected) {
  Listener puddle("127.0.0.1");
  Listener product("127.0.0.2");
  Listener database("127.0.0.1");
  Listener other("127.0.0.1");
  for (const Listener* listener : {&puddle, &product, &database, &other}) {
    ASSERT_TRUE(listener->ok()) << listener->error();
  }
  options_.puddle_listen = "127.0.0.1:" + std::to_string(puddle.port());
  options_.extra_destinations = {"localhost:" + std::to_string(database.port())};
  auto installed = Install();
  ASSERT_TRUE(installed) << installed.error().message;

  EXPECT_EQ(ConnectAs(kUidInRange, puddle), ECONNREFUSED)
      << "to Puddle's port: " << Describe(ConnectAs(kUidInRange, puddle));
  EXPECT_EQ(ConnectAs(kUidInRange, product), ECONNREFUSED)
      << "to the products' address: " << Describe(ConnectAs(kUidInRange, product));
  EXPECT_EQ(ConnectAs(kUidInRange, database), ECONNREFUSED)
      << "to an extra destination: " << Describe(ConnectAs(kUidInRange, database));
  EXPECT_EQ(ConnectAs(kUidInRange, other), 0)
      << "to a port not listed: " << Describe(ConnectAs(kUidInRange, other));
  // The range is inclusive at both ends.
  EXPECT_EQ(ConnectAs(kUidMin, puddle), ECONNREFUSED);
  EXPECT_EQ(ConnectAs(kUidMax, puddle), ECONNREFUSED);
}

TEST_F(FirewallTest, UidsOutsideRangeAreUnaffected) {
  Listener puddle("127.0.0.1");
  Listener product("127.0.0.2");
  ASSERT_TRUE(puddle.ok()) << puddle.error();
  ASSERT_TRUE(product.ok()) << product.error();
  options_.puddle_listen = "127.0.0.1:" + std::to_string(puddle.port());
  auto installed = Install();
  ASSERT_TRUE(installed) << installed.error().message;

  for (uid_t uid : {uid_t{0}, kUidBelowRange, kUidAboveRange}) {
    EXPECT_EQ(ConnectAs(uid, puddle), 0) << "uid " << uid << " to Puddle's port: "
                                         << Describe(ConnectAs(uid, puddle));
    EXPECT_EQ(ConnectAs(uid, product), 0) << "uid " << uid << " to the products' address: "
                                          << Describe(ConnectAs(uid, product));
  }
}

TEST_F(FirewallTest, LocalPortIsRejectedOnEveryLocalAddress) {
  // A service on a wildcard or loopback address is reachable on every local
  // address, so its port is rejected on all of them, IPv6 included.
  Listener other_loopback("127.0.0.5");
  ASSERT_TRUE(other_loopback.ok()) << other_loopback.error();
  Listener ipv6_loopback("::1", other_loopback.port());
  options_.puddle_listen = "0.0.0.0:" + std::to_string(other_loopback.port());
  auto installed = Install();
  ASSERT_TRUE(installed) << installed.error().message;

  EXPECT_EQ(ConnectAs(kUidInRange, other_loopback), ECONNREFUSED)
      << Describe(ConnectAs(kUidInRange, other_loopback));
  if (ipv6_loopback.ok()) {
    EXPECT_EQ(ConnectAs(kUidInRange, ipv6_loopback), ECONNREFUSED)
        << Describe(ConnectAs(kUidInRange, ipv6_loopback));
    EXPECT_EQ(ConnectAs(0, ipv6_loopback), 0);
  } else {
    ADD_FAILURE() << "no IPv6 listener on [::1]:" << other_loopback.port() << ": "
                  << ipv6_loopback.error();
  }
  EXPECT_EQ(ConnectAs(0, other_loopback), 0);
}

TEST_F(FirewallTest, LinkLocalRangesAreRejectedWhole) {
  auto installed = Install();
  ASSERT_TRUE(installed) << installed.error().message;

  std::string ipv4 = ChainRules("iptables");
  EXPECT_THAT(ipv4, HasSubstr("-A " + chain_ +
                              " -d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable"));
  std::string ipv6 = ChainRules("ip6tables");
  EXPECT_THAT(ipv6, HasSubstr("-A " + chain_ +
                              " -d fe80::/10 -j REJECT --reject-with icmp6-port-unreachable"));
  EXPECT_THAT(ipv6, HasSubstr("-A " + chain_ +
                              " -d fd00:ec2::254/128 -j REJECT --reject-with "
                              "icmp6-port-unreachable"));
  auto jumps = Jumps("iptables", chain_);
  ASSERT_EQ(jumps.size(), 1u);
  EXPECT_EQ(jumps[0], "-A OUTPUT -m owner --uid-owner " + std::to_string(kUidMin) + "-" +
                          std::to_string(kUidMax) + " -j " + chain_);
  // First in OUTPUT, ahead of any ACCEPT another tool put there.
  auto output = Lines(Shell("iptables -w 10 -S OUTPUT"));
  ASSERT_GE(output.size(), 2u);
  EXPECT_EQ(output[1], jumps[0]);
  EXPECT_EQ(Jumps("ip6tables", chain_).size(), 1u);
}

TEST_F(FirewallTest, LinkLocalNameServerKeepsDns) {
  std::ofstream(resolv_conf_) << "search example.internal\nnameserver 169.254.169.254\n";
  auto installed = Install();
  ASSERT_TRUE(installed) << installed.error().message;

  auto rules = Lines(ChainRules("iptables"));
  auto position = [&](const std::string& rule) {
    return std::find(rules.begin(), rules.end(), "-A " + chain_ + " " + rule) - rules.begin();
  };
  auto udp = position("-d 169.254.169.254/32 -p udp -m udp --dport 53 -j RETURN");
  auto tcp = position("-d 169.254.169.254/32 -p tcp -m tcp --dport 53 -j RETURN");
  auto reject = position("-d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable");
  ASSERT_LT(reject, static_cast<long>(rules.size())) << ChainRules("iptables");
  EXPECT_LT(udp, reject) << ChainRules("iptables");
  EXPECT_LT(tcp, reject) << ChainRules("iptables");
}

TEST_F(FirewallTest, InstallTwiceKeepsOneJump) {
  Listener puddle("127.0.0.1");
  ASSERT_TRUE(puddle.ok()) << puddle.error();
  options_.puddle_listen = "127.0.0.1:" + std::to_string(puddle.port());
  auto first = Install();
  ASSERT_TRUE(first) << first.error().message;
  std::string ipv4_rules = ChainRules("iptables");
  std::string ipv6_rules = ChainRules("ip6tables");

  auto second = Install();
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(ChainRules("iptables"), ipv4_rules);
  EXPECT_EQ(ChainRules("ip6tables"), ipv6_rules);
  EXPECT_EQ(Jumps("iptables", chain_).size(), 1u);
  EXPECT_EQ(Jumps("ip6tables", chain_).size(), 1u);
  EXPECT_EQ(ConnectAs(kUidInRange, puddle), ECONNREFUSED);
}

TEST_F(FirewallTest, NewUidRangeReplacesJump) {
  auto first = Install();
  ASSERT_TRUE(first) << first.error().message;
  options_.uid_max = kUidMax - 50;
  auto second = Install();
  ASSERT_TRUE(second) << second.error().message;

  for (const char* tool : {"iptables", "ip6tables"}) {
    auto jumps = Jumps(tool, chain_);
    ASSERT_EQ(jumps.size(), 1u) << tool;
    EXPECT_THAT(jumps[0], HasSubstr("--uid-owner " + std::to_string(kUidMin) + "-" +
                                    std::to_string(kUidMax - 50) + " "))
        << tool;
  }
}

TEST_F(FirewallTest, RemoveDeletesChainAndJump) {
  auto installed = Install();
  ASSERT_TRUE(installed) << installed.error().message;
  SystemFirewall firewall(options_);
  auto removed = firewall.Remove();
  ASSERT_TRUE(removed) << removed.error().message;

  for (const char* tool : {"iptables", "ip6tables"}) {
    EXPECT_TRUE(Jumps(tool, chain_).empty()) << tool;
    int status = 0;
    Shell(std::string(tool) + " -w 10 -S " + chain_, &status);
    EXPECT_NE(status, 0) << tool << " still lists " << chain_;
  }
  auto again = firewall.Remove();
  EXPECT_TRUE(again) << again.error().message;
}

TEST_F(FirewallTest, MissingIptablesFails) {
  options_.iptables_path = "/nonexistent/iptables";
  auto installed = Install();
  ASSERT_FALSE(installed);
  EXPECT_THAT(installed.error().message, HasSubstr("/nonexistent/iptables is missing"));
  EXPECT_THAT(installed.error().message, HasSubstr("install Debian's iptables package"));
}

TEST_F(FirewallTest, FailingIptablesReportsItsError) {
  auto script = std::filesystem::temp_directory_path() /
                ("puddle-firewall-test-" + options_.installation_id + ".sh");
  std::ofstream(script) << "#!/bin/sh\necho \"iptables: Permission denied (you must be root).\" >&2\n"
                           "exit 4\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  options_.iptables_path = script.string();
  auto installed = Install();
  std::filesystem::remove(script);

  ASSERT_FALSE(installed);
  EXPECT_THAT(installed.error().message, HasSubstr("exit status 4"));
  EXPECT_THAT(installed.error().message, HasSubstr("Permission denied (you must be root)"));
  EXPECT_THAT(installed.error().message, HasSubstr(script.string() + " -w 10 -N " + chain_));
}

TEST_F(FirewallTest, InvalidOptionsAreRejected) {
  const std::vector<std::string> invalid_destinations = {
      "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:5432", "[::1]", ":5432", "127.0.0.1:x"};
  for (const auto& destination : invalid_destinations) {
    options_.extra_destinations = {destination};
    SystemFirewall firewall(options_);
    auto rules = firewall.BuildRules();
    ASSERT_FALSE(rules) << destination;
    EXPECT_THAT(rules.error().message, HasSubstr("\"" + destination + "\" is invalid")) << destination;
  }
  options_.extra_destinations = {};

  options_.product_listen_address = "localhost";
  EXPECT_FALSE(SystemFirewall(options_).BuildRules());
  options_.product_listen_address = "127.0.0.2";

  options_.uid_min = 0;
  EXPECT_FALSE(SystemFirewall(options_).BuildRules());
  options_.uid_min = kUidMin;

  FirewallOptions short_id = options_;
  short_id.installation_id = "abc";
  EXPECT_FALSE(SystemFirewall(short_id).BuildRules());
}

}  // namespace
}  // namespace puddle::local
