#include "providers/local/network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "providers/local/command.h"
#include "providers/local/firewall.h"

namespace puddle::local {
namespace {

// Seconds iptables waits for the xtables lock that another iptables holds.
constexpr const char* kLockWaitSeconds = "10";
constexpr const char* kLinkLocalIpv4 = "169.254.0.0/16";
constexpr const char* kSystemInterface = "eth0";
// More subnets than this are never handed out, whatever the pool's size.
constexpr int kMaxSubnets = 1 << 20;

enum class Family { kIpv4, kIpv6 };

// One chain of ours and the jump to it from a built-in chain.
struct ChainSpec {
  Family family = Family::kIpv4;
  std::string table;
  std::string name;
  std::string builtin;
  std::vector<std::string> jump_match;  // matches of the jump, before "-j <name>"
  std::vector<std::vector<std::string>> rules;
};

uint32_t Fnv1a(std::string_view text) {
  uint32_t hash = 2166136261u;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619u;
  }
  return hash;
}

std::string Hex(uint32_t value, int digits) {
  char text[16];
  std::snprintf(text, sizeof text, "%0*x", digits, value);
  return text;
}

std::optional<uint32_t> ParseIpv4(const std::string& text) {
  in_addr address{};
  if (inet_pton(AF_INET, text.c_str(), &address) != 1) return std::nullopt;
  return ntohl(address.s_addr);
}

std::string FormatIpv4(uint32_t value) {
  in_addr address{};
  address.s_addr = htonl(value);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &address, text, sizeof text);
  return text;
}

struct Cidr {
  uint32_t base = 0;
  int prefix = 32;
  std::string Text() const { return FormatIpv4(base) + "/" + std::to_string(prefix); }
};

std::optional<Cidr> ParseCidr(const std::string& text) {
  size_t slash = text.find('/');
  auto address = ParseIpv4(text.substr(0, slash));
  if (!address) return std::nullopt;
  Cidr cidr{*address, 32};
  if (slash != std::string::npos) {
    std::string prefix = text.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 2 ||
        prefix.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    cidr.prefix = std::stoi(prefix);
    if (cidr.prefix > 32) return std::nullopt;
  }
  uint32_t mask = cidr.prefix == 0 ? 0 : ~uint32_t{0} << (32 - cidr.prefix);
  cidr.base &= mask;
  return cidr;
}

bool Overlaps(const Cidr& a, const Cidr& b) {
  int prefix = std::min(a.prefix, b.prefix);
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (a.base & mask) == (b.base & mask);
}

struct HostPort {
  std::string host;
  int port = 0;
};

// Splits "host:port". IPv6 is rejected: namespaces have IPv4 only.
Result<HostPort> ParseHostPort(const std::string& text, const std::string& key) {
  auto invalid = [&](const std::string& why) {
    return MakeError(ErrorCode::kValidationFailed,
                     key + " entry \"" + text + "\" is invalid: " + why +
                         "; expected an IPv4 CIDR such as 192.0.2.0/24 or host:port such as "
                         "pypi.example.org:443",
                     key);
  };
  if (text.starts_with('[') || std::count(text.begin(), text.end(), ':') > 1) {
    return invalid("IPv6 is not supported inside system namespaces");
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return invalid("no port");
  HostPort parsed{text.substr(0, colon), 0};
  std::string port = text.substr(colon + 1);
  if (parsed.host.empty()) return invalid("no host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
    return invalid("the port is not a number");
  }
  parsed.port = std::stoi(port);
  if (parsed.port < 1 || parsed.port > 65535) return invalid("the port is not 1-65535");
  return parsed;
}

// The IPv4 addresses of `host`: itself when it is one, else what
// getaddrinfo returns.
Result<std::vector<uint32_t>> ResolveIpv4(const std::string& host, const std::string& key) {
  if (auto address = ParseIpv4(host)) return std::vector<uint32_t>{*address};
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int error = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (error != 0) {
    return MakeError(ErrorCode::kUnavailable, "resolve host \"" + host + "\" of " + key + ": " +
                                                  gai_strerror(error));
  }
  std::vector<uint32_t> addresses;
  for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    uint32_t value = ntohl(reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr.s_addr);
    if (std::find(addresses.begin(), addresses.end(), value) == addresses.end()) {
      addresses.push_back(value);
    }
  }
  freeaddrinfo(found);
  return addresses;
}

// An allow entry: a CIDR (ports: all), or addresses and one port.
struct AllowEntry {
  std::vector<Cidr> destinations;
  int port = 0;  // 0: every port and protocol
};

Result<AllowEntry> ParseAllowEntry(const std::string& text, bool resolve) {
  const std::string key = "providers.local.network.allow";
  if (auto cidr = ParseCidr(text)) return AllowEntry{{*cidr}, 0};
  if (text.find('/') != std::string::npos) {
    return MakeError(ErrorCode::kValidationFailed,
                     key + " entry \"" + text + "\" is not a valid IPv4 CIDR such as 192.0.2.0/24",
                     key);
  }
  auto host_port = ParseHostPort(text, key);
  if (!host_port) return tl::unexpected(host_port.error());
  AllowEntry entry;
  entry.port = host_port->port;
  if (!resolve) return entry;
  auto addresses = ResolveIpv4(host_port->host, key + " entry " + text);
  if (!addresses) return tl::unexpected(addresses.error());
  for (uint32_t address : *addresses) entry.destinations.push_back({address, 32});
  return entry;
}

std::vector<std::vector<std::string>> RejectRules(std::vector<std::string> match) {
  std::vector<std::string> tcp = match;
  tcp.insert(tcp.end(), {"-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"});
  match.insert(match.end(), {"-j", "REJECT", "--reject-with", "icmp-port-unreachable"});
  return {tcp, match};
}

void Append(std::vector<std::vector<std::string>>& rules,
            const std::vector<std::vector<std::string>>& more) {
  rules.insert(rules.end(), more.begin(), more.end());
}

std::vector<std::string> SplitWords(const std::string& line) {
  std::istringstream stream(line);
  std::vector<std::string> words;
  std::string word;
  while (stream >> word) words.push_back(word);
  return words;
}

bool IsValidNamePart(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  });
}

Status WriteSysctl(const std::string& path, std::string_view value) {
  std::ofstream file(path);
  if (!file) return InternalError("open " + path + ": " + std::strerror(errno));
  file << value;
  file.flush();
  if (!file) return InternalError("write " + path + ": " + std::strerror(errno));
  return Ok();
}

}  // namespace

std::optional<NamespaceId> ProcessNamespace(int64_t pid) {
  struct stat info{};
  std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  if (stat(path.c_str(), &info) != 0) return std::nullopt;
  return NamespaceId{info.st_dev, info.st_ino};
}

SystemNetworks::SystemNetworks(NetworkOptions options) : options_(std::move(options)) {
  if (auto cidr = ParseCidr(options_.cidr)) {
    pool_base_ = cidr->base;
    pool_prefix_ = cidr->prefix;
  }
}

Status SystemNetworks::Validate() const {
  const std::string key = "providers.local.network.cidr";
  if (!IsValidNamePart(options_.installation_id) || options_.installation_id.size() < 8) {
    return InternalError("network: installation id \"" + options_.installation_id +
                         "\" must be at least 8 letters, digits, '-' or '_'");
  }
  auto pool = ParseCidr(options_.cidr);
  if (!pool || options_.cidr.find('/') == std::string::npos) {
    return MakeError(ErrorCode::kValidationFailed,
                     key + " \"" + options_.cidr + "\" is not an IPv4 CIDR such as 10.213.0.0/16",
                     key);
  }
  if (pool->prefix < 8 || pool->prefix > 30) {
    return MakeError(ErrorCode::kValidationFailed,
                     key + " \"" + options_.cidr +
                         "\" must have a prefix length from /8 to /30; each system takes a /30",
                     key);
  }
  const Cidr reserved[] = {{0, 8}, {0x7F000000, 8}, {0xA9FE0000, 16}, {0xE0000000, 3}};
  for (const Cidr& range : reserved) {
    if (Overlaps(*pool, range)) {
      return MakeError(ErrorCode::kValidationFailed,
                       key + " \"" + options_.cidr + "\" overlaps " + range.Text() +
                           "; choose a private range such as 10.213.0.0/16",
                       key);
    }
  }
  for (const auto& entry : options_.allow) {
    if (auto parsed = ParseAllowEntry(entry, /*resolve=*/false); !parsed) {
      return tl::unexpected(parsed.error());
    }
  }
  return Ok();
}

Status SystemNetworks::CheckAvailable() const {
  if (geteuid() != 0) {
    return MakeError(ErrorCode::kUnavailable, "Puddle does not run as root");
  }
  for (const std::string* path : {&options_.ip_path, &options_.iptables_path}) {
    if (access(path->c_str(), X_OK) != 0) {
      return MakeError(ErrorCode::kUnavailable,
                       *path + " is missing or not executable (" + std::strerror(errno) +
                           "); install Debian's iproute2 and iptables packages");
    }
  }
  if (access("/proc/self/ns/net", F_OK) != 0) {
    return MakeError(ErrorCode::kUnavailable, "the kernel has no network namespaces");
  }
  return Validate();
}

int SystemNetworks::SubnetCount() const {
  if (pool_prefix_ < 8 || pool_prefix_ > 30) return 0;
  int bits = 30 - pool_prefix_;
  return bits >= 20 ? kMaxSubnets : (1 << bits);
}

SystemAddresses SystemNetworks::AddressesOf(int index) const {
  uint32_t network = pool_base_ + static_cast<uint32_t>(index) * 4;
  return {FormatIpv4(network + 1), FormatIpv4(network + 2), 30};
}

std::string SystemNetworks::NamespaceName(std::string_view system_id) const {
  return "puddle-" + options_.installation_id + "-" + std::string(system_id);
}

std::string SystemNetworks::NamespacePath(std::string_view system_id) const {
  return options_.netns_dir + "/" + NamespaceName(system_id);
}

std::string SystemNetworks::InterfacePrefix() const {
  return "pd" + Hex(Fnv1a(options_.installation_id) & 0xFFFFF, 5);
}

std::string SystemNetworks::HostInterface(std::string_view system_id) const {
  return InterfacePrefix() + Hex(Fnv1a(system_id), 8);
}

Result<std::string> SystemNetworks::Ip(const std::vector<std::string>& arguments) const {
  return RunChecked(options_.ip_path, arguments);
}

bool SystemNetworks::InterfaceExists(const std::string& name) const {
  return if_nametoindex(name.c_str()) != 0;
}

bool SystemNetworks::HasIpv6() const { return access(options_.ipv6_probe_path.c_str(), F_OK) == 0; }

bool SystemNetworks::Exists(std::string_view system_id) const {
  return access(NamespacePath(system_id).c_str(), F_OK) == 0;
}

std::optional<NamespaceId> SystemNetworks::NamespaceOf(std::string_view system_id) const {
  struct stat info{};
  if (stat(NamespacePath(system_id).c_str(), &info) != 0) return std::nullopt;
  return NamespaceId{info.st_dev, info.st_ino};
}

std::vector<std::string> SystemNetworks::ListSystems() const {
  std::vector<std::string> systems;
  const std::string prefix = "puddle-" + options_.installation_id + "-";
  std::unique_ptr<DIR, int (*)(DIR*)> directory(opendir(options_.netns_dir.c_str()), closedir);
  while (dirent* entry = directory ? readdir(directory.get()) : nullptr) {
    std::string name = entry->d_name;
    if (name.size() > prefix.size() && name.starts_with(prefix)) {
      systems.push_back(name.substr(prefix.size()));
    }
  }
  std::sort(systems.begin(), systems.end());
  return systems;
}

Status SystemNetworks::Create(std::string_view system_id, int index) {
  if (index < 0 || index >= SubnetCount()) {
    return InternalError("subnet " + std::to_string(index) + " lies outside " + options_.cidr);
  }
  if (auto status = Destroy(system_id); !status) return status;

  const std::string name = NamespaceName(system_id);
  const std::string host = HostInterface(system_id);
  const SystemAddresses addresses = AddressesOf(index);
  const std::string prefix = "/" + std::to_string(addresses.prefix_length);
  std::vector<std::vector<std::string>> steps = {
      {"netns", "add", name},
      {"link", "add", host, "type", "veth", "peer", "name", kSystemInterface, "netns", name},
      {"link", "set", "dev", host, "alias",
       "puddle " + options_.installation_id + " " + std::string(system_id)},
  };
  // Without address generation neither end gets an IPv6 link-local address,
  // through which the system could reach the host's services.
  if (HasIpv6()) {
    steps.push_back({"link", "set", "dev", host, "addrgenmode", "none"});
    steps.push_back({"-n", name, "link", "set", "dev", kSystemInterface, "addrgenmode", "none"});
  }
  steps.push_back({"addr", "add", addresses.host + prefix, "dev", host});
  steps.push_back({"link", "set", "dev", host, "up"});
  steps.push_back({"-n", name, "addr", "add", addresses.system + prefix, "dev", kSystemInterface});
  steps.push_back({"-n", name, "link", "set", "dev", "lo", "up"});
  steps.push_back({"-n", name, "link", "set", "dev", kSystemInterface, "up"});
  steps.push_back({"-n", name, "route", "add", "default", "via", addresses.host});

  auto fail = [&](const Error& error) {
    (void)Destroy(system_id);
    return tl::unexpected(error.WithContext("create the network namespace " + name));
  };
  for (const auto& step : steps) {
    if (auto done = Ip(step); !done) return fail(done.error());
  }
  if (!options_.allow.empty()) {
    // Scoped to this veth: packets from the system may be forwarded, while
    // net.ipv4.ip_forward and every other interface keep their setting.
    if (auto written = WriteSysctl("/proc/sys/net/ipv4/conf/" + host + "/forwarding", "1");
        !written) {
      return fail(written.error());
    }
  }
  return Ok();
}

Status SystemNetworks::Destroy(std::string_view system_id) {
  const std::string host = HostInterface(system_id);
  // Deleting one end of a veth pair deletes both.
  if (InterfaceExists(host)) {
    auto deleted = Ip({"link", "delete", "dev", host});
    if (!deleted && InterfaceExists(host)) return tl::unexpected(deleted.error());
  }
  if (Exists(system_id)) {
    auto deleted = Ip({"netns", "delete", NamespaceName(system_id)});
    if (!deleted && Exists(system_id)) return tl::unexpected(deleted.error());
  }
  return Ok();
}

namespace {

std::vector<ChainSpec> BuildChains(const std::string& base, const std::string& interfaces,
                                   const Cidr& pool, const std::vector<AllowEntry>& allow,
                                   const std::vector<std::pair<uint32_t, int>>& denied) {
  const std::string pool_text = pool.Text();
  const std::vector<std::string> from = {"-i", interfaces};
  const std::vector<std::string> replies = {"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
                                            "-j", "ACCEPT"};
  auto with = [](std::vector<std::string> first, const std::vector<std::string>& second) {
    first.insert(first.end(), second.begin(), second.end());
    return first;
  };

  ChainSpec input{Family::kIpv4, "filter", base + "-IN", "INPUT", from, {}};
  input.rules.push_back(replies);
  Append(input.rules, RejectRules({}));

  ChainSpec forward{Family::kIpv4, "filter", base + "-FWD", "FORWARD", {}, {}};
  // Denials first, so no allow entry can open them.
  Append(forward.rules, RejectRules(with(from, {"-o", interfaces})));
  Append(forward.rules, RejectRules(with(from, {"-d", kLinkLocalIpv4})));
  Append(forward.rules, RejectRules(with(from, {"-d", pool_text})));
  for (const auto& [address, port] : denied) {
    forward.rules.push_back(with(from, {"-d", FormatIpv4(address) + "/32", "-p", "tcp", "--dport",
                                        std::to_string(port), "-j", "REJECT", "--reject-with",
                                        "tcp-reset"}));
  }
  forward.rules.push_back(with(from, replies));
  for (const auto& entry : allow) {
    for (const auto& destination : entry.destinations) {
      if (entry.port == 0) {
        forward.rules.push_back(with(from, {"-d", destination.Text(), "-j", "ACCEPT"}));
        continue;
      }
      for (const char* protocol : {"tcp", "udp"}) {
        forward.rules.push_back(with(from, {"-d", destination.Text(), "-p", protocol, "--dport",
                                            std::to_string(entry.port), "-j", "ACCEPT"}));
      }
    }
  }
  Append(forward.rules, RejectRules(from));
  forward.rules.push_back(with({"-o", interfaces}, replies));
  forward.rules.push_back({"-o", interfaces, "-j", "DROP"});

  ChainSpec nat{Family::kIpv4, "nat", base + "-NAT", "POSTROUTING", {}, {}};
  nat.rules.push_back({"-s", pool_text, "!", "-d", pool_text, "-j", "MASQUERADE"});

  ChainSpec input6{Family::kIpv6, "filter", base + "-IN", "INPUT", from, {{"-j", "DROP"}}};
  ChainSpec forward6{Family::kIpv6, "filter", base + "-FWD", "FORWARD", {},
                     {{"-i", interfaces, "-j", "DROP"}, {"-o", interfaces, "-j", "DROP"}}};
  return {input, forward, nat, input6, forward6};
}

}  // namespace

// Runs iptables or ip6tables with the lock wait.
static Result<std::string> RunTables(const NetworkOptions& options, Family family,
                                     std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), {"-w", kLockWaitSeconds});
  return RunChecked(family == Family::kIpv4 ? options.iptables_path : options.ip6tables_path,
                    arguments);
}

// The jumps from `spec.builtin` to `spec.name`, as `iptables -S` prints them.
static Result<std::vector<std::vector<std::string>>> ListJumps(const NetworkOptions& options,
                                                               const ChainSpec& spec) {
  auto listing = RunTables(options, spec.family, {"-t", spec.table, "-S", spec.builtin});
  if (!listing) return tl::unexpected(listing.error());
  std::vector<std::vector<std::string>> jumps;
  std::istringstream lines(*listing);
  std::string line;
  while (std::getline(lines, line)) {
    auto words = SplitWords(line);
    if (words.size() >= 4 && words[0] == "-A" && words[words.size() - 2] == "-j" &&
        words.back() == spec.name) {
      jumps.push_back(std::move(words));
    }
  }
  return jumps;
}

// Creates the chain or replaces its rules in one iptables-restore commit, so
// no packet ever meets it half-filled (several Puddle processes install the
// same rules as they start).
static Status FillChain(const NetworkOptions& options, const ChainSpec& spec) {
  std::string text = "*" + spec.table + "\n:" + spec.name + " - [0:0]\n";
  for (const auto& rule : spec.rules) {
    text += "-A " + spec.name;
    for (const auto& word : rule) text += " " + word;
    text += "\n";
  }
  text += "COMMIT\n";

  char path[] = "/tmp/puddle-rules-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return InternalError(std::string("create a rules file in /tmp: ") + std::strerror(errno));
  bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int write_error = errno;
  close(fd);
  if (!written) {
    unlink(path);
    return InternalError(std::string("write ") + path + ": " + std::strerror(write_error));
  }
  const std::string& restore = spec.family == Family::kIpv4 ? options.iptables_restore_path
                                                            : options.ip6tables_restore_path;
  auto restored = RunChecked(restore, {"-w", kLockWaitSeconds, "--noflush", path});
  unlink(path);
  if (!restored) return tl::unexpected(restored.error());
  return Ok();
}

static Status InstallChain(const NetworkOptions& options, const ChainSpec& spec) {
  auto run = [&](std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), {"-t", spec.table});
    return RunTables(options, spec.family, arguments);
  };
  if (auto filled = FillChain(options, spec); !filled) return filled;

  std::vector<std::string> jump = spec.jump_match;
  jump.insert(jump.end(), {"-j", spec.name});
  auto jumps = ListJumps(options, spec);
  if (!jumps) return tl::unexpected(jumps.error());
  std::vector<std::string> check = {"-C", spec.builtin};
  check.insert(check.end(), jump.begin(), jump.end());
  if (jumps->size() == 1 && run(check)) return Ok();
  for (auto& words : *jumps) {
    words[0] = "-D";
    if (auto deleted = run(words); !deleted) return tl::unexpected(deleted.error());
  }
  // First in the built-in chain, ahead of any ACCEPT another tool added.
  std::vector<std::string> insert = {"-I", spec.builtin, "1"};
  insert.insert(insert.end(), jump.begin(), jump.end());
  if (auto inserted = run(insert); !inserted) return tl::unexpected(inserted.error());
  return Ok();
}

static Status RemoveChain(const NetworkOptions& options, const ChainSpec& spec) {
  auto run = [&](std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), {"-t", spec.table});
    return RunTables(options, spec.family, arguments);
  };
  auto jumps = ListJumps(options, spec);
  if (!jumps) return tl::unexpected(jumps.error());
  for (auto& words : *jumps) {
    words[0] = "-D";
    if (auto deleted = run(words); !deleted) return tl::unexpected(deleted.error());
  }
  if (!run({"-S", spec.name})) return Ok();
  if (auto flushed = run({"-F", spec.name}); !flushed) return tl::unexpected(flushed.error());
  if (auto deleted = run({"-X", spec.name}); !deleted) return tl::unexpected(deleted.error());
  return Ok();
}

Status SystemNetworks::InstallRules() {
  std::lock_guard<std::mutex> lock(rules_mutex_);
  if (auto valid = Validate(); !valid) return valid;
  std::vector<AllowEntry> allow;
  for (const auto& text : options_.allow) {
    auto entry = ParseAllowEntry(text, /*resolve=*/true);
    if (!entry) return tl::unexpected(entry.error());
    allow.push_back(std::move(*entry));
  }
  std::vector<std::pair<uint32_t, int>> denied;
  for (const auto& text : options_.denied) {
    // An IPv6 destination, or a host without IPv4 addresses, is out of the
    // namespaces' reach anyway; one on this host is behind the INPUT chain.
    auto destination = ParseHostPort(text, "denied destination");
    if (!destination) continue;
    auto addresses = ResolveIpv4(destination->host, "denied destination " + text);
    if (!addresses) continue;
    for (uint32_t address : *addresses) denied.emplace_back(address, destination->port);
  }
  auto chains = BuildChains(FirewallChainName(options_.installation_id), InterfacePrefix() + "+",
                            Cidr{pool_base_, pool_prefix_}, allow, denied);
  for (const auto& spec : chains) {
    if (spec.family == Family::kIpv6 && (!HasIpv6() || access(options_.ip6tables_path.c_str(), X_OK) != 0)) {
      continue;
    }
    if (auto installed = InstallChain(options_, spec); !installed) return installed;
  }
  return Ok();
}

Status SystemNetworks::RemoveRules() {
  std::lock_guard<std::mutex> lock(rules_mutex_);
  auto chains = BuildChains(FirewallChainName(options_.installation_id), InterfacePrefix() + "+",
                            Cidr{pool_base_, pool_prefix_}, {}, {});
  for (const auto& spec : chains) {
    if (spec.family == Family::kIpv6 && (!HasIpv6() || access(options_.ip6tables_path.c_str(), X_OK) != 0)) {
      continue;
    }
    if (auto removed = RemoveChain(options_, spec); !removed) return removed;
  }
  return Ok();
}

std::vector<int> SystemNetworks::SubnetsInUse(const std::string& ignored_interface) const {
  std::vector<int> subnets;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return subnets;
  const Cidr pool{pool_base_, pool_prefix_};
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    if (entry->ifa_name != nullptr && ignored_interface == entry->ifa_name) continue;
    uint32_t address = ntohl(reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr.s_addr);
    if (!Overlaps(pool, Cidr{address, 32})) continue;
    int subnet = static_cast<int>((address - pool_base_) / 4);
    if (subnet < SubnetCount() && std::find(subnets.begin(), subnets.end(), subnet) == subnets.end()) {
      subnets.push_back(subnet);
    }
  }
  freeifaddrs(list);
  return subnets;
}

std::vector<std::string> SystemNetworks::UplinksWithoutForwarding() const {
  std::vector<std::string> uplinks;
  for (const auto& text : options_.allow) {
    auto entry = ParseAllowEntry(text, /*resolve=*/true);
    if (!entry) continue;
    for (const auto& destination : entry->destinations) {
      // The first host of the range stands for it: one route covers it.
      uint32_t probe = destination.prefix >= 31 ? destination.base : destination.base + 1;
      auto route = Ip({"-4", "-o", "route", "get", FormatIpv4(probe)});
      if (!route) continue;
      auto words = SplitWords(*route);
      auto dev = std::find(words.begin(), words.end(), "dev");
      if (dev == words.end() || dev + 1 == words.end() || *(dev + 1) == "lo") continue;
      std::ifstream setting("/proc/sys/net/ipv4/conf/" + *(dev + 1) + "/forwarding");
      std::string value;
      setting >> value;
      if (value == "0" && std::find(uplinks.begin(), uplinks.end(), *(dev + 1)) == uplinks.end()) {
        uplinks.push_back(*(dev + 1));
      }
    }
  }
  return uplinks;
}

}  // namespace puddle::local
