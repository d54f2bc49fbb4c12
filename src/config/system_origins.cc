#include "config/system_origins.h"

#include <arpa/inet.h>

#include <boost/url/parse.hpp>

#include "config/readers.h"

namespace puddle {
namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

bool IsIpLiteral(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

std::string ListenPort(std::string_view listen) {
  size_t colon = listen.rfind(':');
  return colon == std::string_view::npos ? "" : std::string(listen.substr(colon + 1));
}

// The port browsers use: backend.baseUrl's (443 when it names none), else the listener's.
std::string PublicPort(const Config& config) {
  if (config.base_url.empty()) return ListenPort(config.listen);
  auto url = boost::urls::parse_absolute_uri(config.base_url);
  if (!url) return "443";
  if (url->has_port()) return std::string(url->port());
  return url->scheme() == "http" ? "80" : "443";
}

}  // namespace

std::string HostOfHeader(std::string_view host_header) {
  std::string_view host = host_header;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return {};
    return Lower(host.substr(1, close - 1));
  }
  size_t colon = host.find(':');
  if (colon != std::string_view::npos) host = host.substr(0, colon);
  return Lower(host);
}

bool IsSystemId(std::string_view id) {
  if (id.empty() || id.size() > 40) return false;
  for (char c : id) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!allowed) return false;
  }
  if (id.front() == '-' || id.back() == '-') return false;
  return !(id.size() >= 4 && id[2] == '-' && id[3] == '-');
}

SystemOrigins::SystemOrigins(const Config& config)
    : systems_domain_(Lower(config.systems_domain)),
      base_host_(config::BaseUrlHost(config.base_url)) {
  std::string listen_host = config::ListenHost(config.listen);
  wildcard_listen_ = listen_host == "0.0.0.0" || listen_host == "::";
  if (!wildcard_listen_) listen_host_ = listen_host;

  std::string port = PublicPort(config);
  if (port != "443" && !port.empty()) port_suffix_ = ":" + port;

  if (!config.base_url.empty()) {
    puddle_origin_ = Lower(config.base_url);
  } else if (wildcard_listen_ || config::IsLoopbackHost(listen_host)) {
    puddle_origin_ = "https://localhost" + port_suffix_;
  } else {
    bool v6 = listen_host.find(':') != std::string::npos;
    puddle_origin_ = "https://" + (v6 ? "[" + listen_host + "]" : listen_host) + port_suffix_;
  }

  // Same rule as the config check's warning.
  bool reached_from_other_hosts = (!base_host_.empty() && !config::IsLoopbackHost(base_host_)) ||
                                  !config::IsLoopbackHost(listen_host);
  work_ = !(reached_from_other_hosts && config::IsLoopbackHost(systems_domain_));
}

bool SystemOrigins::IsPuddleHost(const std::string& host) const {
  if (host == "127.0.0.1" || host == "::1") return true;
  if (!base_host_.empty()) return host == base_host_;
  if (host == "localhost") return true;
  if (!listen_host_.empty() && host == listen_host_) return true;
  return wildcard_listen_ && IsIpLiteral(host);
}

HostMatch SystemOrigins::Classify(std::string_view host_header) const {
  std::string host = HostOfHeader(host_header);
  HostMatch match;
  std::string suffix = "." + systems_domain_;
  if (host.size() > suffix.size() && host.ends_with(suffix)) {
    std::string label = host.substr(0, host.size() - suffix.size());
    if (IsSystemId(label)) {
      match.kind = HostKind::kSystem;
      match.system_id = std::move(label);
    }
    return match;
  }
  if (IsPuddleHost(host)) match.kind = HostKind::kPuddle;
  return match;
}

std::string SystemOrigins::OriginOf(const std::string& system_id) const {
  return "https://" + system_id + "." + systems_domain_ + port_suffix_;
}

std::string SystemOrigins::BasePath(const std::string& system_id, std::string_view base_path_mode) {
  return base_path_mode == "strip" ? "/" : "/systems/" + system_id + "/";
}

std::string SystemOrigins::UrlOf(const std::string& system_id,
                                 std::string_view base_path_mode) const {
  return OriginOf(system_id) + BasePath(system_id, base_path_mode);
}

bool IsLocalPath(std::string_view path) {
  if (path.empty() || path[0] != '/' || path.rfind("//", 0) == 0) return false;
  for (char c : path) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::string SystemOrigins::SignInNext(std::string_view next) const {
  if (IsLocalPath(next)) return std::string(next);
  constexpr std::string_view kScheme = "https://";
  if (next.substr(0, kScheme.size()) != kScheme) return "/";
  size_t path_start = next.find('/', kScheme.size());
  std::string_view authority = next.substr(
      kScheme.size(), path_start == std::string_view::npos ? std::string_view::npos
                                                           : path_start - kScheme.size());
  HostMatch match = Classify(authority);
  if (match.kind != HostKind::kSystem) return "/";
  std::string origin = OriginOf(match.system_id);
  if (next.substr(0, path_start) != origin) return "/";  // another port or spelling
  if (path_start == std::string_view::npos) return origin + "/";
  return IsLocalPath(next.substr(path_start)) ? std::string(next) : "/";
}

}  // namespace puddle
