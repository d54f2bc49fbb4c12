#include "api/proxy/access_proxy.h"

#include <cctype>
#include <string>
#include <vector>

#include "api/error_mapping.h"
#include "common/log.h"

namespace puddle::proxy {
namespace {

constexpr std::string_view kSystemsPrefix = "/systems/";

bool IsUnsafe(std::string_view method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

bool ContainsWord(std::string_view header, std::string_view word) {
  std::string lower(header);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find(word) != std::string::npos;
}

// True for any request for a protocol switch, whatever protocols it names and
// however many Upgrade headers carry them. The Origin check must not depend on
// which of them the product or the relay accepts.
bool AsksForUpgrade(const http::Request& request) {
  for (const auto& [name, value] : request.headers) {
    if (name == "upgrade") return true;
  }
  return false;
}

bool WantsHtml(const http::Request& request) {
  return (request.method == "GET" || request.method == "HEAD") &&
         ContainsWord(request.Header("accept"), "text/html");
}

// Percent-encodes all but unreserved characters and "/".
std::string Encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

std::optional<std::string> QueryParam(const http::Request& request, std::string_view name) {
  for (const auto& [key, value] : request.query) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// The cookie pairs of every Cookie header, in order.
std::vector<std::pair<std::string, std::string>> Cookies(const http::Request& request) {
  std::vector<std::pair<std::string, std::string>> cookies;
  for (const auto& [name, value] : request.headers) {
    if (name != "cookie") continue;
    size_t pos = 0;
    while (pos < value.size()) {
      size_t end = value.find(';', pos);
      if (end == std::string::npos) end = value.size();
      std::string_view pair(value.data() + pos, end - pos);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      while (!pair.empty() && pair.back() == ' ') pair.remove_suffix(1);
      size_t equals = pair.find('=');
      if (!pair.empty()) {
        cookies.emplace_back(std::string(pair.substr(0, equals)),
                             equals == std::string_view::npos
                                 ? std::string()
                                 : std::string(pair.substr(equals + 1)));
      }
      pos = end + 1;
    }
  }
  return cookies;
}

std::string CookieValue(const http::Request& request, std::string_view name) {
  for (const auto& [key, value] : Cookies(request)) {
    if (key == name) return value;
  }
  return {};
}

// Puddle's cookies, whatever their spelling; none of them reaches a product.
bool IsPuddleCookie(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("puddle") != std::string::npos;
}

// Request headers the proxy replaces or removes: credentials, and what it sets itself.
bool IsDroppedHeader(std::string_view name) {
  return name == "host" || name == "cookie" || name == "authorization" ||
         name == "x-puddle-token" || name == "proxy-authorization" || name == "origin" ||
         name == "x-csrf-token" || name == "forwarded" || name == "x-forwarded-for" ||
         name == "x-forwarded-proto" || name == "x-forwarded-host" || name == "x-real-ip";
}

Error Problem(ErrorCode code, std::string message) {
  return MakeError(code, std::move(message)).value();
}

http::Response WithDefaults(http::Response response) {
  response.SetHeader("x-content-type-options", "nosniff");
  response.SetHeader("cache-control", "no-store");
  response.SetHeader("referrer-policy", "no-referrer");
  return response;
}

http::HeadDecision Respond(const Error& error, const http::Request& request) {
  http::HeadDecision decision;
  decision.response = WithDefaults(http::ErrorResponse(error, request.request_id));
  return decision;
}

http::HeadDecision Redirect(const std::string& location) {
  http::Response response;
  response.status = 302;
  response.SetHeader("location", location);
  http::HeadDecision decision;
  decision.response = WithDefaults(std::move(response));
  return decision;
}

}  // namespace

std::string HeaderToken(const http::Request& request) {
  std::string_view token = request.Header("x-puddle-token");
  if (!token.empty()) return std::string(token);
  std::string_view authorization = request.Header("authorization");
  if (authorization.size() > 7 &&
      (authorization.substr(0, 7) == "Bearer " || authorization.substr(0, 7) == "bearer ")) {
    return std::string(authorization.substr(7));
  }
  return {};
}

bool IsPuddlePath(std::string_view path) {
  // Judged on the path as a server that ignores case, merges slashes and
  // resolves dot segments would see it, so that no spelling of /.puddle/
  // reaches a product that normalizes paths that way.
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find_first_of("/?", start);
    if (end == std::string_view::npos) end = path.size();
    std::string segment(path.substr(start, end - start));
    for (char& c : segment) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(std::move(segment));
    }
    if (end == path.size() || path[end] == '?') break;
    start = end + 1;
  }
  return !segments.empty() && segments.front() == ".puddle";
}

bool IsSafeNext(std::string_view next) {
  if (next.empty() || next.front() != '/' || next.starts_with("//")) return false;
  for (unsigned char c : next) {
    if (c < 0x20 || c == 0x7f || c == '\\') return false;
  }
  return !IsPuddlePath(next);
}

AccessProxy::AccessProxy(AccessProxyDependencies dependencies)
    : deps_(dependencies), origins_(dependencies.config) {}

http::HeadDecision AccessProxy::Decide(const http::Request& request) {
  HostMatch host = origins_.Classify(request.Header("host"));
  switch (host.kind) {
    case HostKind::kSystem:
      return DecideSystemOrigin(request, host.system_id);
    case HostKind::kPuddle:
      if (request.target.starts_with(kSystemsPrefix)) return DecideProgramsPath(request);
      return {};
    case HostKind::kOther:
      break;
  }
  return Respond(
      Problem(ErrorCode::kNotFound, "this server does not answer for host \"" +
                                        HostOfHeader(request.Header("host")) + "\"; Puddle is at " +
                                        origins_.PuddleOrigin() +
                                        " (set backend.baseUrl to the address users reach it at)"),
      request);
}

http::HeadDecision AccessProxy::DecideSystemOrigin(const http::Request& request,
                                                   const std::string& system_id) {
  // Puddle's own paths, judged on the decoded path so that "/%2epuddle/" counts too.
  if (IsPuddlePath(request.path)) {
    if (request.path == "/.puddle/session") return ExchangeCode(request, system_id);
    return Respond(Problem(ErrorCode::kNotFound, "no such resource: " + request.path), request);
  }

  // The product credential makes products skip their own Origin and XSRF
  // checks, so Puddle makes them.
  if (AsksForUpgrade(request) || IsUnsafe(request.method)) {
    std::string_view origin = request.Header("origin");
    if (origin != origins_.OriginOf(system_id)) {
      std::string shown = origin.empty() ? "no Origin header" : "Origin " + std::string(origin);
      return Respond(
          Problem(ErrorCode::kForbidden, "rejected a cross-origin request to system \"" +
                                             system_id + "\" (" + shown + "); only pages of " +
                                             origins_.OriginOf(system_id) + " may send it"),
          request);
    }
  }

  auto actor = deps_.access.AuthenticateCookie(CookieValue(request, kSystemCookie), system_id);
  if (!actor) {
    if (WantsHtml(request)) {
      return Redirect(origins_.PuddleOrigin() + "/api/v1/systems/" + system_id +
                      "/open?next=" + Encode(request.target));
    }
    return Respond(actor.error(), request);
  }
  auto destination = LoadDestination(*actor, system_id);
  if (!destination) return Respond(destination.error(), request);

  ReportRequest(system_id, request.method, request.path);
  http::HeadDecision decision;
  decision.proxy = Target(request, *destination, request.target, true);
  decision.proxy->still_allowed =
      RecheckCookie(CookieValue(request, kSystemCookie), system_id, actor->user_id);
  decision.proxy->recheck_interval = deps_.recheck_interval;
  return decision;
}

http::HeadDecision AccessProxy::DecideProgramsPath(const http::Request& request) {
  // The id comes from the raw target, so the path the product gets starts with it exactly.
  std::string_view rest = std::string_view(request.target).substr(kSystemsPrefix.size());
  std::string system_id(rest.substr(0, rest.find_first_of("/?")));
  std::string after(rest.substr(system_id.size()));
  if (!IsSystemId(system_id)) {
    return Respond(Problem(ErrorCode::kNotFound, "no such resource: " + request.path), request);
  }

  std::string token = HeaderToken(request);
  if (token.empty()) {
    if (WantsHtml(request)) return Redirect("/api/v1/systems/" + system_id + "/open");
    return Respond(
        Problem(ErrorCode::kUnauthenticated,
                "send a token in X-Puddle-Token or Authorization: Bearer (cookies do not "
                "count here); browsers open systems at /api/v1/systems/" +
                    system_id + "/open"),
        request);
  }
  auto actor = deps_.auth.AuthenticateToken(token);
  if (!actor) return Respond(actor.error(), request);
  auto destination = LoadDestination(*actor, system_id);
  if (!destination) return Respond(destination.error(), request);

  // basePathMode: a `strip` product is served at its root.
  std::string target = request.target;
  std::string product_path = request.path;
  if (destination->base_path_mode == "strip") {
    target = after.empty() || after.front() == '?' ? "/" + after : after;
    std::string prefix = std::string(kSystemsPrefix) + system_id;
    product_path = request.path.size() > prefix.size() ? request.path.substr(prefix.size()) : "/";
  }
  ReportRequest(system_id, request.method, product_path);

  http::HeadDecision decision;
  decision.proxy = Target(request, *destination, std::move(target), false);
  decision.proxy->still_allowed = RecheckToken(std::move(token), system_id, actor->user_id);
  decision.proxy->recheck_interval = deps_.recheck_interval;
  // Pages served here share Puddle's origin: keep them from acting on it.
  decision.proxy->remove_response_headers = {"set-cookie", "set-cookie2"};
  decision.proxy->add_response_headers = {{"content-security-policy", "sandbox"},
                                          {"x-content-type-options", "nosniff"}};
  return decision;
}

http::HeadDecision AccessProxy::ExchangeCode(const http::Request& request,
                                             const std::string& system_id) {
  // Only GET, so that a HEAD from a link preview cannot use the code up.
  if (request.method != "GET") {
    return Respond(Problem(ErrorCode::kMethodNotAllowed,
                           request.method + " is not allowed on /.puddle/session; open the "
                                            "system again from Puddle"),
                   request);
  }
  auto cookie = deps_.access.ExchangeCode(QueryParam(request, "code").value_or(""), system_id);
  if (!cookie) return Respond(cookie.error(), request);

  std::string next = QueryParam(request, "next").value_or("");
  if (!IsSafeNext(next)) {
    auto image_mode = deps_.store.ReadValue<std::string>([&](Tx& tx) -> Result<std::string> {
      PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystem(system_id));
      if (!system) return std::string("prefix");
      PUDDLE_ASSIGN_OR_RETURN(auto image, tx.GetImage(system->image_id));
      return image ? image->launch.base_path_mode : std::string("prefix");
    });
    next = SystemOrigins::BasePath(system_id, image_mode.value_or("prefix"));
  }
  http::HeadDecision decision = Redirect(next);
  decision.response->headers.emplace_back(
      "set-cookie",
      std::string(kSystemCookie) + "=" + *cookie + "; Path=/; Secure; HttpOnly; SameSite=Lax");
  return decision;
}

Result<AccessProxy::Destination> AccessProxy::LoadDestination(const Actor& actor,
                                                              const std::string& system_id) {
  auto not_found = [&] {
    return MakeError(ErrorCode::kNotFound, "system \"" + system_id + "\" not found");
  };
  Destination destination;
  PUDDLE_RETURN_IF_ERROR(deps_.store.Read([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto system, tx.GetSystem(system_id));
    if (!system || (!actor.IsAdmin() && system->owner_id != actor.user_id) ||
        system->status == SystemStatus::kDeleted || system->status == SystemStatus::kDeleting) {
      return not_found();
    }
    PUDDLE_ASSIGN_OR_RETURN(auto image, tx.GetImage(system->image_id));
    destination.base_path_mode = image ? image->launch.base_path_mode : "prefix";
    destination.system = std::move(*system);
    return Ok();
  }));
  const System& system = destination.system;
  if (system.status != SystemStatus::kRunning || system.address.empty()) {
    return MakeError(ErrorCode::kUnavailable,
                     "system \"" + system_id + "\" is " +
                         std::string(SystemStatusName(system.status)) +
                         ", not running; start it from Puddle and wait until it is running");
  }
  auto token = deps_.systems.ProductToken(system);
  if (!token) {
    log::Error("cannot unseal a product token",
               {{"system_id", system_id}, {"error", token.error().message}});
    return MakeError(ErrorCode::kInternal, "cannot reach the product of system \"" + system_id +
                                               "\": its credential is unreadable");
  }
  destination.token = std::move(*token);
  return destination;
}

http::ProxyTarget AccessProxy::Target(const http::Request& request, const Destination& destination,
                                      std::string target, bool keep_product_cookies) {
  http::ProxyTarget proxy;
  proxy.address = destination.system.address;
  proxy.target = std::move(target);
  proxy.max_body_bytes = kMaxProxiedBodyBytes;

  for (const auto& [name, value] : request.headers) {
    if (!IsDroppedHeader(name)) proxy.request_headers.emplace_back(name, value);
  }
  if (keep_product_cookies) {
    std::string kept;
    for (const auto& [name, value] : Cookies(request)) {
      if (IsPuddleCookie(name)) continue;
      if (!kept.empty()) kept += "; ";
      kept += name + "=" + value;
    }
    if (!kept.empty()) proxy.request_headers.emplace_back("cookie", std::move(kept));
  }
  proxy.request_headers.emplace_back("host", destination.system.address);
  proxy.request_headers.emplace_back("authorization", "token " + destination.token);
  proxy.request_headers.emplace_back("x-forwarded-for", request.peer_address);
  proxy.request_headers.emplace_back("x-forwarded-proto", "https");
  proxy.request_headers.emplace_back("x-forwarded-host", std::string(request.Header("host")));

  if (deps_.activity != nullptr) {
    ActivitySink* sink = deps_.activity;
    std::string system_id = destination.system.id;
    proxy.on_client_message = [sink, system_id](std::string_view message) {
      sink->OnClientMessage(system_id, message);
    };
  }
  return proxy;
}

void AccessProxy::ReportRequest(const std::string& system_id, const std::string& method,
                                const std::string& path) {
  if (deps_.activity != nullptr) deps_.activity->OnProxiedRequest(system_id, method, path);
}

std::function<bool()> AccessProxy::RecheckCookie(std::string cookie, std::string system_id,
                                                 std::string user_id) {
  return [this, cookie = std::move(cookie), system_id = std::move(system_id),
          user_id = std::move(user_id)] {
    return MayStillUse(deps_.access.AuthenticateCookie(cookie, system_id), user_id, system_id);
  };
}

std::function<bool()> AccessProxy::RecheckToken(std::string token, std::string system_id,
                                                std::string user_id) {
  return [this, token = std::move(token), system_id = std::move(system_id),
          user_id = std::move(user_id)] {
    return MayStillUse(deps_.auth.AuthenticateToken(token), user_id, system_id);
  };
}

// Fails closed: a store error also ends the connection, which clients such
// as Jupyter open again with a new, fully checked request.
bool AccessProxy::MayStillUse(const Result<Actor>& actor, const std::string& user_id,
                              const std::string& system_id) {
  std::string reason;
  if (!actor) {
    reason = actor.error().message;
  } else if (actor->user_id != user_id) {
    reason = "the credential now belongs to another user";
  } else {
    auto system = deps_.store.ReadValue<std::optional<System>>(
        [&](Tx& tx) { return tx.GetSystem(system_id); });
    if (!system) {
      reason = "reading the system failed: " + system.error().message;
    } else if (!*system || (*system)->status == SystemStatus::kDeleted ||
               (*system)->status == SystemStatus::kDeleting) {
      reason = "the system is deleted";
    } else if (!actor->IsAdmin() && (*system)->owner_id != user_id) {
      reason = "the user is neither its owner nor an admin";
    } else {
      return true;
    }
  }
  log::Info("access to a system ended for an open proxied connection",
            {{"system_id", system_id}, {"user_id", user_id}, {"reason", reason}});
  return false;
}

Result<http::Response> AccessProxy::Open(const std::optional<Actor>& actor,
                                         const http::Request& request, const std::string& system_id,
                                         const std::optional<std::string>& next) {
  if (!actor) {
    if (WantsHtml(request)) {
      http::Response response;
      response.status = 302;
      response.SetHeader("location", "/login?next=" + Encode(request.target));
      return response;
    }
    return MakeError(ErrorCode::kUnauthenticated, "sign in first");
  }
  if (!origins_.Work()) {
    return MakeError(ErrorCode::kUnavailable,
                     "systems cannot open in a browser: proxy.systemsDomain \"" +
                         origins_.systems_domain() +
                         "\" resolves only on this host, but Puddle is reached from other "
                         "hosts; set proxy.systemsDomain to a domain whose every subdomain "
                         "reaches Puddle. Programs can still use /systems/" +
                         system_id + "/ with a token");
  }
  PUDDLE_ASSIGN_OR_RETURN(auto view, deps_.systems.Get(*actor, system_id));
  const System& system = view.system;
  if (system.status != SystemStatus::kRunning || system.product_status != ProductStatus::kReady) {
    Error error =
        Problem(ErrorCode::kConflict,
                "system \"" + system_id + "\" is " + std::string(SystemStatusName(system.status)) +
                    " and its product " + std::string(ProductStatusName(system.product_status)) +
                    "; it opens once it is running and ready");
    error.status = std::string(SystemStatusName(system.status));
    return tl::unexpected(error);
  }
  std::string path = next && IsSafeNext(*next) ? *next : "";
  if (path.empty()) {
    auto image = deps_.store.ReadValue<std::optional<Image>>(
        [&](Tx& tx) { return tx.GetImage(system.image_id); });
    std::string mode = image && *image ? (*image)->launch.base_path_mode : "prefix";
    path = SystemOrigins::BasePath(system_id, mode);
  }
  PUDDLE_ASSIGN_OR_RETURN(auto code, deps_.access.IssueCode(*actor, system_id));

  http::Response response;
  response.status = 302;
  response.SetHeader("location", origins_.OriginOf(system_id) + "/.puddle/session?code=" + code +
                                     "&next=" + Encode(path));
  response.SetHeader("referrer-policy", "no-referrer");
  return response;
}

}  // namespace puddle::proxy
