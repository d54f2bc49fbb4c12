#include "providers/local/firewall.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "common/log.h"
#include "providers/local/command.h"

namespace puddle::local {
namespace {

// Seconds iptables waits for the xtables lock that another iptables holds.
constexpr const char* kLockWaitSeconds = "10";

constexpr const char* kLinkLocalIpv4 = "169.254.0.0/16";
constexpr const char* kLinkLocalIpv6 = "fe80::/10";
// The IPv6 address of the EC2 instance metadata service.
constexpr const char* kMetadataIpv6 = "fd00:ec2::254";

// --- addresses ----------------------------------------------------------------

struct Address {
  IpFamily family = IpFamily::kIpv4;
  std::string text;  // canonical, as inet_ntop writes it
  in_addr ipv4{};
  in6_addr ipv6{};
};

std::optional<Address> ParseIp(std::string_view text) {
  std::string copy(text);
  Address address;
  char canonical[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET, copy.c_str(), &address.ipv4) == 1) {
    address.family = IpFamily::kIpv4;
    inet_ntop(AF_INET, &address.ipv4, canonical, sizeof canonical);
  } else if (inet_pton(AF_INET6, copy.c_str(), &address.ipv6) == 1) {
    address.family = IpFamily::kIpv6;
    inet_ntop(AF_INET6, &address.ipv6, canonical, sizeof canonical);
  } else {
    return std::nullopt;
  }
  address.text = canonical;
  return address;
}

struct Destination {
  std::string host;
  int port = 0;
};

// Splits "host:port" or "[IPv6]:port".
Result<Destination> ParseDestination(const std::string& text, const std::string& label) {
  auto invalid = [&](const std::string& why) {
    return InternalError(label + " \"" + text + "\" is invalid: " + why +
                         "; expected host:port such as 127.0.0.1:5432 or [::1]:6379");
  };
  Destination destination;
  std::string port_text;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid("no port after the bracketed IPv6 address");
    }
    destination.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return invalid("no port");
    destination.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (destination.host.find(':') != std::string::npos) {
      return invalid("an IPv6 address needs brackets");
    }
  }
  if (destination.host.empty()) return invalid("no host");
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return invalid("the port is not a number");
  }
  destination.port = std::stoi(port_text);
  if (destination.port < 1 || destination.port > 65535) return invalid("the port is not 1-65535");
  return destination;
}

// Returns the addresses `host` stands for: itself when it is an IP address,
// otherwise every address getaddrinfo returns for it.
Result<std::vector<Address>> ResolveHost(const std::string& host, const std::string& label) {
  if (auto address = ParseIp(host)) return std::vector<Address>{*address};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int error = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (error != 0) {
    return InternalError("resolve host \"" + host + "\" of " + label + ": " + gai_strerror(error));
  }
  std::vector<Address> addresses;
  for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (entry->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr, text, sizeof text);
    } else if (entry->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(entry->ai_addr)->sin6_addr, text,
                sizeof text);
    } else {
      continue;
    }
    auto address = ParseIp(text);
    if (!address) continue;
    bool seen = std::any_of(addresses.begin(), addresses.end(),
                            [&](const Address& known) { return known.text == address->text; });
    if (!seen) addresses.push_back(*address);
  }
  freeaddrinfo(found);
  if (addresses.empty()) return InternalError("resolve host \"" + host + "\" of " + label + ": no IP address");
  return addresses;
}

// The addresses of this host's interfaces, as canonical text.
std::set<std::string> HostAddresses() {
  std::set<std::string> addresses;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return addresses;
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (entry->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr, text, sizeof text);
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(entry->ifa_addr)->sin6_addr, text,
                sizeof text);
    } else {
      continue;
    }
    addresses.insert(text);
  }
  freeifaddrs(list);
  return addresses;
}

// True for wildcard and loopback addresses and addresses of this host: a
// service bound there may be reachable on every local address.
bool IsOnThisHost(const Address& address, const std::set<std::string>& host_addresses) {
  if (address.family == IpFamily::kIpv4) {
    uint32_t value = ntohl(address.ipv4.s_addr);
    if (value == 0 || (value >> 24) == 127) return true;
  } else if (IN6_IS_ADDR_UNSPECIFIED(&address.ipv6) || IN6_IS_ADDR_LOOPBACK(&address.ipv6)) {
    return true;
  }
  return host_addresses.contains(address.text);
}

// True for the addresses the chain rejects as a whole: link-local and the
// EC2 metadata service's IPv6 address.
bool IsLinkLocal(const Address& address) {
  if (address.family == IpFamily::kIpv4) return (ntohl(address.ipv4.s_addr) >> 16) == 0xA9FE;
  return IN6_IS_ADDR_LINKLOCAL(&address.ipv6) || address.text == kMetadataIpv6;
}

// Name servers from resolv.conf that lie in the link-local ranges. A missing
// file means none.
std::vector<Address> LinkLocalNameServers(const std::string& path) {
  std::vector<Address> servers;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream words(line);
    std::string keyword, value;
    if (!(words >> keyword >> value) || keyword != "nameserver") continue;
    // glibc accepts a zone suffix ("fe80::1%eth0"); the rule matches the address alone.
    value = value.substr(0, value.find('%'));
    auto address = ParseIp(value);
    if (address && IsLinkLocal(*address)) servers.push_back(*address);
  }
  return servers;
}

std::string Cidr(const Address& address) {
  return address.text + (address.family == IpFamily::kIpv4 ? "/32" : "/128");
}

const char* IcmpReject(IpFamily family) {
  return family == IpFamily::kIpv4 ? "icmp-port-unreachable" : "icmp6-port-unreachable";
}

// Appends the rule unless `rules` already contains it.
void AddRule(std::vector<FirewallRule>& rules, IpFamily family, std::vector<std::string> arguments) {
  bool present = std::any_of(rules.begin(), rules.end(), [&](const FirewallRule& rule) {
    return rule.family == family && rule.arguments == arguments;
  });
  if (!present) rules.push_back({family, std::move(arguments)});
}

// Rejects new TCP connections to `port` on `address`, or on every local
// address of both families when `address` is on this host.
void AddDestinationRules(std::vector<FirewallRule>& rules, const Address& address, int port,
                         const std::set<std::string>& host_addresses) {
  const std::string port_text = std::to_string(port);
  if (IsOnThisHost(address, host_addresses)) {
    for (IpFamily family : {IpFamily::kIpv4, IpFamily::kIpv6}) {
      AddRule(rules, family,
              {"-p", "tcp", "--syn", "--dport", port_text, "-m", "addrtype", "--dst-type", "LOCAL",
               "-j", "REJECT", "--reject-with", "tcp-reset"});
    }
    return;
  }
  AddRule(rules, address.family,
          {"-d", Cidr(address), "-p", "tcp", "--syn", "--dport", port_text, "-j", "REJECT",
           "--reject-with", "tcp-reset"});
}

bool CanNameChain(std::string_view id) {
  return id.size() >= 8 && std::all_of(id.begin(), id.begin() + 8, [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
         });
}

std::vector<std::string> SplitWords(const std::string& line) {
  std::istringstream stream(line);
  std::vector<std::string> words;
  std::string word;
  while (stream >> word) words.push_back(word);
  return words;
}

}  // namespace

std::string FirewallChainName(std::string_view installation_id) {
  return "PUDDLE-" + std::string(installation_id.substr(0, 8));
}

SystemFirewall::SystemFirewall(FirewallOptions options)
    : options_(std::move(options)), chain_(FirewallChainName(options_.installation_id)) {}

Result<std::vector<FirewallRule>> SystemFirewall::BuildRules() const {
  if (!CanNameChain(options_.installation_id)) {
    return InternalError("firewall: installation id \"" + options_.installation_id +
                         "\" must start with 8 letters, digits, '_' or '-' to name the chain");
  }
  if (options_.uid_min < 1 || options_.uid_max < options_.uid_min ||
      options_.uid_max > 4294967294) {
    return InternalError("firewall: uid range " + std::to_string(options_.uid_min) + "-" +
                         std::to_string(options_.uid_max) +
                         " is invalid: expected 1 <= min <= max < 4294967295");
  }
  std::vector<FirewallRule> rules;

  // Link-local and metadata addresses, whole. DNS to a name server among
  // them returns to OUTPUT first, so name resolution keeps working.
  for (const Address& server : LinkLocalNameServers(options_.resolv_conf_path)) {
    for (const char* protocol : {"udp", "tcp"}) {
      AddRule(rules, server.family,
              {"-d", Cidr(server), "-p", protocol, "--dport", "53", "-j", "RETURN"});
    }
  }
  AddRule(rules, IpFamily::kIpv4,
          {"-d", kLinkLocalIpv4, "-j", "REJECT", "--reject-with", IcmpReject(IpFamily::kIpv4)});
  AddRule(rules, IpFamily::kIpv6,
          {"-d", kLinkLocalIpv6, "-j", "REJECT", "--reject-with", IcmpReject(IpFamily::kIpv6)});
  AddRule(rules, IpFamily::kIpv6,
          {"-d", std::string(kMetadataIpv6) + "/128", "-j", "REJECT", "--reject-with",
           IcmpReject(IpFamily::kIpv6)});

  // Other systems' products: every port of the products' listen address.
  if (!options_.product_listen_address.empty()) {
    auto address = ParseIp(options_.product_listen_address);
    if (!address) {
      return InternalError("firewall: products' listen address \"" +
                           options_.product_listen_address + "\" is not an IP address");
    }
    AddRule(rules, address->family,
            {"-d", Cidr(*address), "-p", "tcp", "--syn", "-j", "REJECT", "--reject-with",
             "tcp-reset"});
  }

  // Puddle's own services.
  std::vector<std::pair<std::string, std::string>> destinations;
  if (!options_.puddle_listen.empty()) {
    destinations.emplace_back(options_.puddle_listen, "Puddle's listen address");
  }
  for (const auto& extra : options_.extra_destinations) {
    destinations.emplace_back(extra, "firewall destination");
  }
  const std::set<std::string> host_addresses = HostAddresses();
  for (const auto& [text, label] : destinations) {
    auto destination = ParseDestination(text, label);
    if (!destination) return tl::unexpected(destination.error());
    auto addresses = ResolveHost(destination->host, label + " " + text);
    if (!addresses) return tl::unexpected(addresses.error());
    for (const Address& address : *addresses) {
      AddDestinationRules(rules, address, destination->port, host_addresses);
    }
  }
  return rules;
}

std::vector<IpFamily> SystemFirewall::Families() const {
  if (access(options_.ipv6_probe_path.c_str(), F_OK) == 0) return {IpFamily::kIpv4, IpFamily::kIpv6};
  return {IpFamily::kIpv4};
}

Status SystemFirewall::Install() {
  auto rules = BuildRules();
  if (!rules) return tl::unexpected(rules.error());
  auto families = Families();
  if (families.size() == 1) {
    log::Info("IPv6 is disabled in the kernel, so no ip6tables rules are installed",
              {{"path", options_.ipv6_probe_path}});
  }
  for (IpFamily family : families) {
    if (auto installed = InstallFamily(family, *rules); !installed) return installed;
  }
  return Ok();
}

Status SystemFirewall::InstallFamily(IpFamily family, const std::vector<FirewallRule>& rules) {
  // Create the chain, unless an earlier run did.
  if (!Succeeds(family, {"-S", chain_})) {
    if (auto created = Run(family, {"-N", chain_}); !created) return tl::unexpected(created.error());
  }

  // Refill it, so rules from an earlier configuration go away.
  if (auto flushed = Run(family, {"-F", chain_}); !flushed) return tl::unexpected(flushed.error());
  for (const FirewallRule& rule : rules) {
    if (rule.family != family) continue;
    std::vector<std::string> arguments = {"-A", chain_};
    arguments.insert(arguments.end(), rule.arguments.begin(), rule.arguments.end());
    if (auto added = Run(family, arguments); !added) return tl::unexpected(added.error());
  }
  return ReplaceJumps(family);
}

Status SystemFirewall::ReplaceJumps(IpFamily family) {
  const std::vector<std::string> jump = {
      "-m", "owner", "--uid-owner",
      std::to_string(options_.uid_min) + "-" + std::to_string(options_.uid_max), "-j", chain_};
  auto jumps = ListJumps(family);
  if (!jumps) return tl::unexpected(jumps.error());

  std::vector<std::string> check = {"-C", "OUTPUT"};
  check.insert(check.end(), jump.begin(), jump.end());
  if (jumps->size() == 1 && Succeeds(family, check)) return Ok();

  // Delete every jump (duplicates, or jumps for an earlier uid range), then
  // insert the one wanted first in OUTPUT, ahead of any ACCEPT rule.
  for (auto& words : *jumps) {
    words[0] = "-D";
    if (auto deleted = Run(family, words); !deleted) return tl::unexpected(deleted.error());
  }
  std::vector<std::string> insert = {"-I", "OUTPUT", "1"};
  insert.insert(insert.end(), jump.begin(), jump.end());
  if (auto inserted = Run(family, insert); !inserted) return tl::unexpected(inserted.error());
  return Ok();
}

Status SystemFirewall::Remove() {
  for (IpFamily family : Families()) {
    if (auto removed = RemoveFamily(family); !removed) return removed;
  }
  return Ok();
}

Status SystemFirewall::RemoveFamily(IpFamily family) {
  auto jumps = ListJumps(family);
  if (!jumps) return tl::unexpected(jumps.error());
  for (auto& words : *jumps) {
    words[0] = "-D";
    if (auto deleted = Run(family, words); !deleted) return tl::unexpected(deleted.error());
  }
  if (!Succeeds(family, {"-S", chain_})) return Ok();
  if (auto flushed = Run(family, {"-F", chain_}); !flushed) return tl::unexpected(flushed.error());
  if (auto deleted = Run(family, {"-X", chain_}); !deleted) return tl::unexpected(deleted.error());
  return Ok();
}

Result<std::vector<std::vector<std::string>>> SystemFirewall::ListJumps(IpFamily family) const {
  auto listing = Run(family, {"-S", "OUTPUT"});
  if (!listing) return tl::unexpected(listing.error());
  std::vector<std::vector<std::string>> jumps;
  std::istringstream lines(*listing);
  std::string line;
  while (std::getline(lines, line)) {
    auto words = SplitWords(line);
    if (words.size() < 2 || words[0] != "-A" || words[1] != "OUTPUT") continue;
    auto target = std::find(words.begin(), words.end(), "-j");
    if (target != words.end() && target + 1 != words.end() && *(target + 1) == chain_) {
      jumps.push_back(std::move(words));
    }
  }
  return jumps;
}

Result<std::string> SystemFirewall::Run(IpFamily family,
                                        const std::vector<std::string>& arguments) const {
  const std::string& path =
      family == IpFamily::kIpv4 ? options_.iptables_path : options_.ip6tables_path;
  if (access(path.c_str(), X_OK) != 0) {
    return MakeError(ErrorCode::kUnavailable,
                     path + " is missing or not executable (" + std::strerror(errno) +
                         "); install Debian's iptables package");
  }
  std::vector<std::string> with_wait = {"-w", kLockWaitSeconds};
  with_wait.insert(with_wait.end(), arguments.begin(), arguments.end());
  auto output = RunCommand(path, with_wait);
  if (!output) return tl::unexpected(output.error());
  if (output->exit_status != 0) {
    std::string reason = TrimTrailingSpace(output->standard_error);
    if (reason.empty()) reason = "no error output";
    return MakeError(ErrorCode::kUnavailable,
                     JoinCommand(path, with_wait) + " failed with exit status " +
                         std::to_string(output->exit_status) + ": " + reason);
  }
  return output->standard_output;
}

bool SystemFirewall::Succeeds(IpFamily family, const std::vector<std::string>& arguments) const {
  return Run(family, arguments).has_value();
}

}  // namespace puddle::local
