// SystemOrigins: which host names are Puddle's and which are systems', and
// the addresses derived from them, all from the config.
//
// Puddle's own hosts are the host of backend.baseUrl when set, else the host
// of `listen` (unless it is a wildcard address), and `localhost`; IP literals
// `127.0.0.1` and `::1` always, and any IP literal when `listen` is a
// wildcard address. A system's origin is https://<id>.<proxy.systemsDomain>,
// with the port of backend.baseUrl (else of `listen`) unless it is 443.
// Immutable after construction, so thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace puddle {

enum class HostKind {
  kPuddle,  // Puddle's API, pages and the programs' path
  kSystem,  // <id>.<systemsDomain>: one system's origin
  kOther,   // neither: answered with 404
};

struct HostMatch {
  HostKind kind = HostKind::kOther;
  std::string system_id;  // for kSystem
};

class SystemOrigins {
 public:
  explicit SystemOrigins(const Config& config);

  // Sorts a Host header value ("abc.systems.localhost:8443", "[::1]:8443").
  HostMatch Classify(std::string_view host_header) const;

  // False when browsers elsewhere cannot reach <id>.<systemsDomain>: Puddle
  // is reached from other hosts while the domain resolves only on this one.
  bool Work() const { return work_; }

  // "https://<id>.<systemsDomain>[:port]", without a trailing slash.
  std::string OriginOf(const std::string& system_id) const;
  // Where a system's product is found on its origin: "/systems/<id>/" for
  // `prefix` products, "/" for `strip` ones.
  static std::string BasePath(const std::string& system_id, std::string_view base_path_mode);
  // OriginOf + BasePath.
  std::string UrlOf(const std::string& system_id, std::string_view base_path_mode) const;

  // Puddle's origin for absolute redirects: backend.baseUrl when set, else
  // https://localhost:<port> for a loopback or wildcard `listen`, else
  // https://<listen>.
  const std::string& PuddleOrigin() const { return puddle_origin_; }

  // Where /login sends a browser after signing in: `next` when it is a path
  // on Puddle's origin or an address on a system's own origin (exactly as
  // OriginOf spells it), else "/".
  std::string SignInNext(std::string_view next) const;
  const std::string& systems_domain() const { return systems_domain_; }

 private:
  bool IsPuddleHost(const std::string& host) const;

  std::string systems_domain_;
  std::string base_host_;    // host of backend.baseUrl, or ""
  std::string listen_host_;  // host of `listen`, or "" when a wildcard
  bool wildcard_listen_ = false;
  std::string port_suffix_;  // ":8443", or "" for 443
  std::string puddle_origin_;
  bool work_ = true;
};

// Splits "host:port" / "[v6]:port" / "host" and returns the host, lower-cased,
// without brackets.
std::string HostOfHeader(std::string_view host_header);

// True for a path on the current origin: one leading "/", not "//", no
// backslash or control character.
bool IsLocalPath(std::string_view path);

// True for a system id: ^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$.
bool IsSystemId(std::string_view id);

}  // namespace puddle
