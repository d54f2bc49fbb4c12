// SystemFirewall: iptables and ip6tables rules that keep local systems away
// from the cloud metadata service, from Puddle's own services and from other
// systems' products while they share the host's network namespace: the
// fallback where network.h's namespaces cannot be made. The uid-range jump
// does not see packets of systems in their own namespaces.
//
// The rules live in one chain per installation, PUDDLE-<first 8 characters of
// the installation id>, in the filter table of both iptables and ip6tables.
// OUTPUT jumps to it, as its first rule, only for packets whose socket belongs
// to a uid in [uid_min, uid_max] (`-m owner --uid-owner MIN-MAX`), so Puddle
// (root) and every other user of the host are unaffected. The chain rejects:
//   - every packet to the link-local ranges 169.254.0.0/16 and fe80::/10 and
//     to fd00:ec2::254, which contain the cloud metadata addresses. DNS (port
//     53) to a name server that resolv.conf lists in those ranges stays
//     allowed, because on Google Compute Engine the metadata server is also
//     the resolver;
//   - new TCP connections to the products' listen address (any port);
//   - new TCP connections to Puddle's listen address and port and to each
//     extra destination. When such an address is a wildcard, a loopback
//     address or an address of this host, the port is rejected on every local
//     address of both families (`-m addrtype --dst-type LOCAL`), because the
//     service may be listening on more addresses than the configured one.
// TCP rules match only SYN packets, so a product's replies to connections
// that Puddle opens to it are never rejected. REJECT answers at once (TCP
// reset or ICMP port unreachable): connect() fails with ECONNREFUSED and no
// packet leaves the host.
//
// Install and Remove run /usr/sbin/iptables and /usr/sbin/ip6tables through
// execve with an argument vector (no shell) and need root (CAP_NET_ADMIN).
// Not thread-safe: call them from one thread, as start-up does.
//
// Limitations: host names among the destinations are resolved once, at
// Install. Install flushes and refills the chain, so for a moment while it
// runs the chain is empty. TCP connections open before Install stay open.
// Everything else stays reachable: the internet, other hosts, and services on
// 127.0.0.1 such as the Jupyter kernel ports of every system.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace puddle::local {

struct FirewallOptions {
  // Names the chain. Its first 8 characters must be in [A-Za-z0-9_-].
  std::string installation_id;
  // Inclusive range of uids whose packets pass through the chain.
  int64_t uid_min = 0;
  int64_t uid_max = 0;
  // Puddle's HTTPS address as in Config::listen: "127.0.0.1:8443",
  // "0.0.0.0:443" or "[::]:8443". Empty: no rule for it.
  std::string puddle_listen;
  // The products' listen address (providers.local.listenAddress), an IP
  // address. Empty: no rule for it.
  std::string product_listen_address;
  // More "host:port" (or "[IPv6]:port") TCP destinations to reject, such as
  // Puddle's PostgreSQL and Redis. Host names are resolved at Install.
  std::vector<std::string> extra_destinations;
  // Read for name servers in the link-local ranges, which keep DNS.
  std::string resolv_conf_path = "/etc/resolv.conf";
  // Present when the kernel has IPv6. Without it no ip6tables rule is made.
  std::string ipv6_probe_path = "/proc/net/if_inet6";
  std::string iptables_path = "/usr/sbin/iptables";
  std::string ip6tables_path = "/usr/sbin/ip6tables";
};

enum class IpFamily { kIpv4, kIpv6 };

// One rule of the chain: the arguments that follow "-A <chain>".
struct FirewallRule {
  IpFamily family = IpFamily::kIpv4;
  std::vector<std::string> arguments;
};

// Returns "PUDDLE-" followed by the first 8 characters of `installation_id`.
std::string FirewallChainName(std::string_view installation_id);

class SystemFirewall {
 public:
  explicit SystemFirewall(FirewallOptions options);

  const std::string& chain() const { return chain_; }

  // Returns the chain's rules in order, without running iptables. Fails on an
  // invalid option or destination, or a host name that does not resolve.
  Result<std::vector<FirewallRule>> BuildRules() const;

  // Creates the chain in each family if missing, replaces its rules with
  // BuildRules(), and leaves exactly one OUTPUT jump to it, for the current
  // uid range (jumps for another range, left by an earlier configuration, are
  // deleted). Safe to run again. Fails when iptables is missing or any command
  // fails, with the command and its error output in the message. IPv4 is
  // installed first and stays installed when IPv6 then fails.
  Status Install();

  // Deletes every OUTPUT jump to the chain, then the chain itself, in both
  // families. Succeeds when they are already gone.
  Status Remove();

 private:
  Status InstallFamily(IpFamily family, const std::vector<FirewallRule>& rules);
  Status RemoveFamily(IpFamily family);
  Status ReplaceJumps(IpFamily family);
  // Returns the OUTPUT rules that jump to the chain, as `iptables -S` prints
  // them, split into words ("-A", "OUTPUT", ..., "-j", chain).
  Result<std::vector<std::vector<std::string>>> ListJumps(IpFamily family) const;
  // Runs iptables or ip6tables with `arguments` and returns its standard output.
  Result<std::string> Run(IpFamily family, const std::vector<std::string>& arguments) const;
  // Runs it and returns only whether it exited with 0.
  bool Succeeds(IpFamily family, const std::vector<std::string>& arguments) const;
  std::vector<IpFamily> Families() const;

  FirewallOptions options_;
  std::string chain_;
};

}  // namespace puddle::local
