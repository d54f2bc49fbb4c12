#include "config/readers.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <regex>
#include <set>

namespace puddle::config {
namespace {

std::optional<ValueProblem> Problem(std::string text, int item = -1) {
  return ValueProblem{std::move(text), item};
}

std::string Quoted(std::string_view text) {
  std::string quoted = "\"";
  quoted.append(text);
  quoted.push_back('"');
  return quoted;
}

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

bool ParsePort(std::string_view text, int64_t& port) {
  if (text.empty() || text.size() > 5) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  return error == std::errc() && end == text.data() + text.size() && port >= 1 && port <= 65535;
}

bool IsIpv4(std::string_view text) {
  in_addr address{};
  return inet_pton(AF_INET, std::string(text).c_str(), &address) == 1;
}

bool IsIpv6(std::string_view text) {
  in6_addr address{};
  return inet_pton(AF_INET6, std::string(text).c_str(), &address) == 1;
}

// A DNS name: dot-separated labels of letters, digits and inner hyphens.
bool IsHostName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    start = dot + 1;
  }
  return true;
}

// Returns the problem with an existing, readable-looking regular file path.
std::optional<ValueProblem> CheckRegularFile(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    return Problem("cannot use " + Quoted(path) + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return Problem("cannot use " + Quoted(path) + ": not a regular file");
  }
  return std::nullopt;
}

// Checks "a.b.c.d", "a.b.c.d/n", an IPv6 address, or an IPv6 address with /n.
bool IsAddressOrCidr(std::string_view entry) {
  size_t slash = entry.find('/');
  std::string_view address = entry.substr(0, slash);
  int max_prefix = 0;
  if (IsIpv4(address)) {
    max_prefix = 32;
  } else if (IsIpv6(address)) {
    max_prefix = 128;
  } else {
    return false;
  }
  if (slash == std::string_view::npos) return true;
  std::string_view prefix = entry.substr(slash + 1);
  int bits = -1;
  auto [end, error] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), bits);
  return !prefix.empty() && error == std::errc() && end == prefix.data() + prefix.size() &&
         bits >= 0 && bits <= max_prefix;
}

}  // namespace

std::optional<ValueProblem> ReadDataDir(const ConfigValue& value, Config& config) {
  if (value.text.empty()) return Problem("must not be empty; remove the key to use ./puddle-data");
  config.data_dir = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadListen(const ConfigValue& value, Config& config) {
  const std::string& text = value.text;
  const std::string expected =
      "invalid value " + Quoted(text) +
      ": expected host:port, such as 127.0.0.1:8443, 0.0.0.0:443 or [::1]:8443";
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return Problem(expected);
  std::string_view host(text.data(), colon);
  int64_t port = 0;
  if (!ParsePort(std::string_view(text).substr(colon + 1), port)) return Problem(expected);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']' || !IsIpv6(host.substr(1, host.size() - 2))) {
      return Problem(expected);
    }
  } else if (!IsIpv4(host) && !IsHostName(host)) {
    return Problem(expected);
  }
  config.listen = text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadTlsCertFile(const ConfigValue& value, Config& config) {
  if (!value.text.empty()) {
    if (auto problem = CheckRegularFile(value.text)) return problem;
  }
  config.tls_cert_file = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadTlsKeyFile(const ConfigValue& value, Config& config) {
  if (!value.text.empty()) {
    if (auto problem = CheckRegularFile(value.text)) return problem;
  }
  config.tls_key_file = value.text;
  return std::nullopt;
}

// The seed's generator makes 32 alphanumeric characters; 16 is the shortest
// accepted so that a secret has at least ~95 bits even when alphanumeric.
constexpr size_t kMinTokenSecretLength = 16;

std::optional<ValueProblem> ReadTokenSecret(const ConfigValue& value, Config& config) {
  // The value is secret: messages give its length, never its text.
  if (!value.text.empty() && value.text.size() < kMinTokenSecretLength) {
    return Problem("too short (" + std::to_string(value.text.size()) + " characters, at least " +
                   std::to_string(kMinTokenSecretLength) +
                   " needed); generate one with `openssl rand -hex 32`, or remove the key to "
                   "let Puddle generate and store one");
  }
  config.token_secret = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadApiKeysEnabled(const ConfigValue& value, Config& config) {
  config.api_keys_enabled = value.flag;
  return std::nullopt;
}

std::optional<ValueProblem> ReadBaseUrl(const ConfigValue& value, Config& config) {
  const std::string& text = value.text;
  const std::string invalid = "invalid value " + Quoted(text) + ": ";
  auto url = boost::urls::parse_absolute_uri(text);

  if (!url) {
    return Problem(invalid +
                   "expected an http:// or https:// URL such as https://puddle.example.com");
  }
  std::string scheme = Lower(url->scheme());
  if (scheme != "http" && scheme != "https") {
    return Problem(invalid + "the scheme must be https or http");
  }
  if (!url->has_authority() || url->encoded_host().empty()) {
    return Problem(invalid + "the URL has no host");
  }
  if (url->has_userinfo()) {
    return Problem(invalid + "the URL must not contain a user name or password");
  }
  int64_t port = 0;
  if (url->has_port() && !ParsePort(url->port(), port)) {
    return Problem(invalid + "the port must be between 1 and 65535");
  }
  if (!(url->encoded_path().empty() || url->encoded_path() == "/") || url->has_query() ||
      url->has_fragment()) {
    return Problem(invalid +
                   "expected scheme://host[:port] with no path, query or fragment, "
                   "because Puddle is served at the root of its host");
  }

  // Stored without the trailing slash, so callers append paths directly.
  std::string stored = text;
  if (!stored.empty() && stored.back() == '/') stored.pop_back();
  config.base_url = stored;
  return std::nullopt;
}

std::optional<ValueProblem> ReadUsePublicIp(const ConfigValue& value, Config& config) {
  config.use_public_ip = value.flag;
  return std::nullopt;
}

std::optional<ValueProblem> ReadSystemsDomain(const ConfigValue& value, Config& config) {
  std::string domain = Lower(value.text);
  if (domain.starts_with("*.")) {
    return Problem("invalid value " + Quoted(value.text) + ": write the domain without \"*.\"; " +
                   "systems are served at https://<id>." + domain.substr(2));
  }
  if (!IsHostName(domain) || IsIpv4(domain)) {
    return Problem("invalid value " + Quoted(value.text) +
                   ": expected a DNS name such as systems.example.com whose every subdomain "
                   "reaches Puddle");
  }
  config.systems_domain = domain;
  return std::nullopt;
}

std::optional<ValueProblem> ReadTrustedProxies(const ConfigValue& value, Config& config) {
  for (size_t i = 0; i < value.items.size(); ++i) {
    if (!IsAddressOrCidr(value.items[i])) {
      return Problem("invalid value " + Quoted(value.items[i]) +
                         ": expected an IP address or CIDR range such as 10.0.0.5 or 10.0.0.0/8",
                     static_cast<int>(i));
    }
  }
  config.trusted_proxies = value.items;
  return std::nullopt;
}

std::optional<ValueProblem> ReadIdleTimeoutOptions(const ConfigValue& value, Config& config) {
  if (value.labeled.empty()) {
    return Problem(
        "must list at least one option, such as {1h: 60, Never: -1}; remove the key "
        "to use the defaults");
  }
  std::vector<IdleTimeoutOption> options;
  for (size_t i = 0; i < value.labeled.size(); ++i) {
    const auto& [label, minutes] = value.labeled[i];
    if (label.empty()) return Problem("the label must not be empty", static_cast<int>(i));
    if (minutes != -1 && minutes <= 0) {
      return Problem("invalid value " + std::to_string(minutes) +
                         ": minutes must be positive, or -1 for never",
                     static_cast<int>(i));
    }
    options.push_back({label, minutes});
  }
  config.idle_timeout_options = std::move(options);
  return std::nullopt;
}

std::optional<ValueProblem> ReadMaxKeepAliveMinutes(const ConfigValue& value, Config& config) {
  if (value.number <= 0) {
    return Problem("invalid value " + std::to_string(value.number) + ": must be positive");
  }
  config.max_keep_alive_minutes = value.number;
  return std::nullopt;
}

std::optional<ValueProblem> ReadCurrency(const ConfigValue& value, Config& config) {
  const std::string& code = value.text;
  bool valid = code.size() == 3 &&
               std::all_of(code.begin(), code.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  if (!valid) {
    return Problem("invalid value " + Quoted(code) +
                   ": expected an ISO 4217 code of 3 upper-case letters, such as USD or EUR");
  }
  config.currency = code;
  return std::nullopt;
}

std::optional<ValueProblem> ReadVmNameRegexp(const ConfigValue& value, Config& config) {
  if (value.text.empty()) {
    return Problem("must not be empty; remove the key to use ^[-0-9a-z]*[0-9a-z]$");
  }
  try {
    std::regex compiled(value.text, std::regex::ECMAScript);
  } catch (const std::regex_error& error) {
    return Problem("invalid value " + Quoted(value.text) +
                   ": not a valid regular expression (ECMAScript syntax): " + error.what());
  }
  config.vm_name_regexp = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadWorkers(const ConfigValue& value, Config& config) {
  if (value.number <= 0) {
    return Problem("invalid value " + std::to_string(value.number) + ": must be positive");
  }
  config.workers = value.number;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLogLevel(const ConfigValue& value, Config& config) {
  // Puddle's logger has four levels; the original's trace maps to debug.
  std::string level = Lower(value.text);
  if (level == "trace" || level == "debug") {
    config.log_level = "debug";
  } else if (level == "info") {
    config.log_level = "info";
  } else if (level == "warn" || level == "warning") {
    config.log_level = "warning";
  } else if (level == "error") {
    config.log_level = "error";
  } else {
    return Problem("invalid value " + Quoted(value.text) +
                   ": expected trace, debug, info, warn, warning or error");
  }
  return std::nullopt;
}

std::optional<ValueProblem> ReadDatabaseDriver(const ConfigValue& value, Config& config) {
  if (value.text != "postgres" && value.text != "sqlite") {
    return Problem("invalid value " + Quoted(value.text) +
                   ": expected postgres, or sqlite for the embedded store under dataDir");
  }
  config.database.driver = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadDatabaseHost(const ConfigValue& value, Config& config) {
  const std::string& host = value.text;
  if (!IsHostName(host) && !IsIpv4(host) && !IsIpv6(host)) {
    return Problem("invalid value " + Quoted(host) +
                   ": expected one host name or IP address, such as postgres.example.com or "
                   "10.0.0.5");
  }
  config.database.host = host;
  return std::nullopt;
}

std::optional<ValueProblem> ReadDatabasePort(const ConfigValue& value, Config& config) {
  if (value.number < 1 || value.number > 65535) {
    return Problem("invalid value " + std::to_string(value.number) +
                   ": expected a port between 1 and 65535");
  }
  config.database.port = value.number;
  return std::nullopt;
}

std::optional<ValueProblem> ReadDatabaseUser(const ConfigValue& value, Config& config) {
  if (value.text.empty()) return Problem("must not be empty; name the PostgreSQL user");
  config.database.user = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadDatabaseName(const ConfigValue& value, Config& config) {
  if (value.text.empty()) return Problem("must not be empty; remove the key to use puddle");
  config.database.dbname = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadDatabaseSslMode(const ConfigValue& value, Config& config) {
  static const std::set<std::string, std::less<>> kModes = {
      "disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
  if (!kModes.contains(value.text)) {
    return Problem("invalid value " + Quoted(value.text) +
                   ": expected disable, allow, prefer, require, verify-ca or verify-full");
  }
  config.database.sslmode = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadDatabasePassword(const ConfigValue& value, Config& config) {
  config.database.password = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadRedisProtocol(const ConfigValue& value, Config& config) {
  if (value.text != "tcp" && value.text != "unix") {
    return Problem("invalid value " + Quoted(value.text) + ": expected tcp or unix");
  }
  config.redis.protocol = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadRedisAddress(const ConfigValue& value, Config& config) {
  // The form depends on the protocol, which may come later in the file; the
  // dispatcher checks host:port or the socket path when it connects.
  config.redis.address = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadRedisPassword(const ConfigValue& value, Config& config) {
  config.redis.password = value.text;
  return std::nullopt;
}

std::optional<ValueProblem> ReadRedisTls(const ConfigValue& value, Config& config) {
  if (value.flag) {
    return Problem("true is not supported: Puddle's Redis client (hiredis 0.14) has no TLS, so "
                   "set tls: false and keep Redis on a private network or on loopback");
  }
  config.redis.tls = false;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalEnabled(const ConfigValue& value, Config& config) {
  config.local.enabled = value.flag;
  return std::nullopt;
}

// uid_t is 32 bits and (uid_t)-1 means "no change" to setresuid.
constexpr int64_t kMaxUid = 4294967294;

std::optional<ValueProblem> ReadLocalUidRange(const ConfigValue& value, Config& config) {
  const std::string range = std::to_string(value.range_min) + "-" + std::to_string(value.range_max);
  if (value.range_min < 1) {
    return Problem("invalid value " + Quoted(range) +
                   ": uid 0 is root and must stay out of the range; start at 1 or above");
  }
  if (value.range_max > kMaxUid) {
    return Problem("invalid value " + Quoted(range) + ": uids end at " + std::to_string(kMaxUid));
  }
  config.local.uid_min = value.range_min;
  config.local.uid_max = value.range_max;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalStopGraceSeconds(const ConfigValue& value, Config& config) {
  if (value.number < 0) {
    return Problem("invalid value " + std::to_string(value.number) +
                   ": must be 0 (SIGKILL at once) or more seconds");
  }
  config.local.stop_grace_seconds = value.number;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalListenAddress(const ConfigValue& value, Config& config) {
  const std::string& address = value.text;
  if (!IsIpv4(address) && !IsIpv6(address)) {
    return Problem("invalid value " + Quoted(address) +
                   ": expected an IP address such as 127.0.0.2");
  }
  if (address == "0.0.0.0" || address == "::" || Lower(address) == "0:0:0:0:0:0:0:0") {
    return Problem("invalid value " + Quoted(address) +
                   ": products would listen on every network of the host; use a loopback "
                   "address that Puddle is not served on, such as 127.0.0.2");
  }
  config.local.listen_address = address;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalPortRange(const ConfigValue& value, Config& config) {
  const std::string range = std::to_string(value.range_min) + "-" + std::to_string(value.range_max);
  if (value.range_min < 1024 || value.range_max > 65535) {
    return Problem("invalid value " + Quoted(range) +
                   ": ports must lie between 1024 and 65535, outside the privileged ports");
  }
  config.local.port_min = value.range_min;
  config.local.port_max = value.range_max;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalRequireFirewall(const ConfigValue& value, Config& config) {
  config.local.require_firewall = value.flag;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalNetworkIsolation(const ConfigValue& value, Config& config) {
  config.local.network_isolation = value.flag;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalNetworkCidr(const ConfigValue& value, Config& config) {
  const std::string& cidr = value.text;
  size_t slash = cidr.find('/');
  int bits = -1;
  if (slash != std::string::npos) {
    std::string_view prefix = std::string_view(cidr).substr(slash + 1);
    auto [end, error] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), bits);
    if (error != std::errc() || end != prefix.data() + prefix.size()) bits = -1;
  }
  if (slash == std::string::npos || !IsIpv4(cidr.substr(0, slash)) || bits < 8 || bits > 30) {
    return Problem("invalid value " + Quoted(cidr) +
                   ": expected an IPv4 CIDR range from /8 to /30 such as 10.213.0.0/16; each "
                   "system takes a /30 of it");
  }
  config.local.network_cidr = cidr;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalNetworkAllow(const ConfigValue& value, Config& config) {
  for (size_t i = 0; i < value.items.size(); ++i) {
    const std::string& entry = value.items[i];
    size_t colon = entry.rfind(':');
    bool cidr = IsAddressOrCidr(entry) && IsIpv4(entry.substr(0, entry.find('/')));
    bool host_port = colon != std::string::npos && colon > 0 &&
                     entry.find(':') == colon && entry.find('/') == std::string::npos &&
                     colon + 1 < entry.size() && entry.size() - colon - 1 <= 5 &&
                     entry.find_first_not_of("0123456789", colon + 1) == std::string::npos;
    if (!cidr && !host_port) {
      return Problem("invalid value " + Quoted(entry) +
                         ": expected an IPv4 address or CIDR range such as 192.0.2.0/24, or "
                         "host:port such as pypi.example.org:443 (IPv6 is not supported)",
                     static_cast<int>(i));
    }
  }
  config.local.network_allow = value.items;
  return std::nullopt;
}

std::optional<ValueProblem> ReadLocalPrivateTmp(const ConfigValue& value, Config& config) {
  config.local.private_tmp = value.flag;
  return std::nullopt;
}

std::optional<ValueProblem> ReadFakeEnabled(const ConfigValue& value, Config& config) {
  config.fake_provider_enabled = value.flag;
  return std::nullopt;
}

std::string BaseUrlHost(std::string_view base_url) {
  auto url = boost::urls::parse_absolute_uri(base_url);
  if (!url) return {};
  std::string host = Lower(url->encoded_host());
  // IPv6 literals keep their brackets in encoded_host().
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

std::string ListenHost(std::string_view listen) {
  size_t colon = listen.rfind(':');
  std::string_view host = listen.substr(0, colon == std::string_view::npos ? 0 : colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return Lower(host);
}

bool IsLoopbackHost(std::string_view host) {
  std::string lower = Lower(host);
  if (lower == "localhost" || lower.ends_with(".localhost")) return true;
  if (IsIpv4(lower)) return lower.starts_with("127.");
  return lower == "::1";
}

}  // namespace puddle::config
