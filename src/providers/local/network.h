// SystemNetworks: one network namespace per local system, joined to the host
// by a veth pair, and the iptables rules that decide what it reaches.
//
// Names, so that two installations never clash and leftovers can be found:
//   - namespace  puddle-<installation id>-<system id>, in /run/netns;
//   - host end of the veth  pd<5 hex of the installation id's hash><8 hex of
//     the system id's hash> (15 characters, the kernel's limit), with the
//     alias "puddle <installation id> <system id>"; inside the namespace its
//     peer is eth0.
// Addresses: the pool (providers.local.network.cidr, default 10.213.0.0/16)
// is cut into /30 subnets. Subnet i gives the host end .4i+1 and the system
// .4i+2; the system's default route is the host end. Both ends have IPv6
// address generation off, so neither has a link-local address.
//
// The rules live in chains named after the installation (firewall.h's chain
// name plus -IN, -FWD and -NAT). For packets from the systems' veths:
//   - INPUT: only replies to connections the host opened (Puddle reaching a
//     product) are accepted. Everything else is rejected, so no service of
//     the host is reachable on any of its addresses;
//   - FORWARD: rejected first, whatever `allow` says: another system's veth,
//     the pool, 169.254.0.0/16 (the cloud metadata address), and every
//     denied destination (Puddle's own port, database and Redis). Then
//     replies, then the `allow` entries, then nothing else;
//   - FORWARD into the veths: only replies;
//   - nat POSTROUTING: MASQUERADE for pool sources leaving through any other
//     interface.
// IPv6 from and to the veths is dropped.
//
// Forwarding: the host end of each veth gets net.ipv4.conf.<veth>.forwarding
// = 1 when `allow` is not empty; the global net.ipv4.ip_forward is never
// changed. Replies from an allowed destination arrive on the host's uplink,
// whose own forwarding setting must be 1 for them to reach the system;
// Puddle does not change it, and UplinksWithoutForwarding() names those that
// are off so start-up can warn.
//
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2's ip. Thread-safe
// for different systems; InstallRules is serialized internally.
//
// Limitations: IPv4 only inside namespaces. Host names in `allow` and in the
// denied destinations are resolved once, when the rules are installed.
// Name resolution inside a namespace needs a resolver reachable through
// `allow` (a resolver on the host's loopback, such as 127.0.0.53, is not).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace puddle::local {

inline constexpr std::string_view kDefaultNetworkCidr = "10.213.0.0/16";

struct NetworkOptions {
  // Names the namespaces, interfaces and chains.
  std::string installation_id;
  // IPv4 pool the systems' /30 subnets come from (providers.local.network.cidr).
  std::string cidr = std::string(kDefaultNetworkCidr);
  // Destinations beyond the host that systems may reach: IPv4 CIDRs
  // ("192.0.2.0/24", "192.0.2.7") or "host:port" (TCP and UDP).
  std::vector<std::string> allow;
  // "host:port" TCP destinations that stay unreachable even when `allow`
  // contains them: Puddle's listen address, its PostgreSQL and its Redis.
  std::vector<std::string> denied;
  std::string ip_path = "/usr/sbin/ip";
  std::string iptables_path = "/usr/sbin/iptables";
  std::string ip6tables_path = "/usr/sbin/ip6tables";
  std::string iptables_restore_path = "/usr/sbin/iptables-restore";
  std::string ip6tables_restore_path = "/usr/sbin/ip6tables-restore";
  std::string netns_dir = "/run/netns";
  // Present when the kernel has IPv6.
  std::string ipv6_probe_path = "/proc/net/if_inet6";
};

struct SystemAddresses {
  std::string host;    // host end of the veth
  std::string system;  // the system's end, where its product listens
  int prefix_length = 30;
};

// Identifies a network namespace: device and inode of its nsfs file.
struct NamespaceId {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const NamespaceId&) const = default;
};

// The namespace process `pid` is in, or nullopt when it cannot be read.
std::optional<NamespaceId> ProcessNamespace(int64_t pid);

class SystemNetworks {
 public:
  explicit SystemNetworks(NetworkOptions options);

  // Fails on an invalid pool, allow entry or installation id; the message
  // names the configuration key.
  Status Validate() const;

  // Fails, saying why, when namespaces cannot be made here: Puddle is not
  // root, or ip or iptables is missing.
  Status CheckAvailable() const;

  int SubnetCount() const;
  // REQUIRES: 0 <= index < SubnetCount() and Validate() succeeded.
  SystemAddresses AddressesOf(int index) const;

  std::string NamespaceName(std::string_view system_id) const;
  std::string NamespacePath(std::string_view system_id) const;
  std::string HostInterface(std::string_view system_id) const;
  // "pd" and the installation's 5 hex digits: every host end starts with it.
  std::string InterfacePrefix() const;

  // Creates or refills the chains (each in one iptables-restore commit) and
  // leaves one jump to each in INPUT, FORWARD and POSTROUTING, ahead of
  // other rules. Safe to run again, also from several processes at once.
  Status InstallRules();
  // Deletes the jumps and the chains. Succeeds when they are already gone.
  Status RemoveRules();

  // Creates the system's namespace and veth pair with subnet `index`, after
  // removing any leftover of an earlier launch. On failure nothing is left.
  Status Create(std::string_view system_id, int index);
  // Removes the namespace's name and the veth pair. Succeeds when they are
  // already gone. Processes still inside keep the namespace alive, without
  // a link to the host.
  Status Destroy(std::string_view system_id);
  bool Exists(std::string_view system_id) const;
  std::optional<NamespaceId> NamespaceOf(std::string_view system_id) const;
  // System ids that have a namespace of this installation.
  std::vector<std::string> ListSystems() const;

  // Subnets of the pool whose addresses an interface of the calling
  // thread's network namespace already has, such as a veth left behind by a
  // system whose record is gone, or another installation's. Addresses of
  // `ignored_interface` do not count.
  std::vector<int> SubnetsInUse(const std::string& ignored_interface = "") const;

  // Interfaces that routes to `allow` entries leave through and whose
  // forwarding is off, so replies from there cannot reach the systems.
  std::vector<std::string> UplinksWithoutForwarding() const;

 private:
  Result<std::string> Ip(const std::vector<std::string>& arguments) const;
  bool InterfaceExists(const std::string& name) const;
  bool HasIpv6() const;

  NetworkOptions options_;
  uint32_t pool_base_ = 0;
  int pool_prefix_ = 0;
  std::mutex rules_mutex_;
};

}  // namespace puddle::local
