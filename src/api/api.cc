#include "api/api.h"

#include "api/error_mapping.h"
#include "api/handlers/routes.h"
#include "common/log.h"

namespace puddle::api {
namespace {

bool IsUnsafe(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

std::string CookieValue(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(pos, end - pos);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
    }
    pos = end + 1;
  }
  return {};
}

// scheme://host[:port] of a URL, lower-cased; empty when it has no host.
std::string OriginOf(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  size_t host_end = url.find('/', scheme_end + 3);
  std::string origin = url.substr(0, host_end);
  for (auto& c : origin) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return origin;
}

// Top-level navigations that another site may start: pages, sign-in and entering a system.
bool IsNavigable(const http::Request& request, const Route& route) {
  if (request.Header("sec-fetch-mode") != "navigate") return false;
  if (request.method != "GET" && request.method != "HEAD") return false;
  return route.pattern == "/login" || route.pattern == "/" ||
         route.pattern == "/api/v1/systems/{id}/open";
}

}  // namespace

Api::Api(ApiDependencies dependencies) : deps_(dependencies) {
  AddRoutes(router_, deps_);
}

Status Api::Authenticate(RequestContext& context, const Route& route) {
  const http::Request& request = context.request;
  std::string_view header_token = request.Header("x-puddle-token");
  std::string_view authorization = request.Header("authorization");
  if (header_token.empty() && authorization.size() > 7 &&
      (authorization.substr(0, 7) == "Bearer " || authorization.substr(0, 7) == "bearer ")) {
    header_token = authorization.substr(7);
  }
  if (!header_token.empty()) {
    auto actor = deps_.auth.AuthenticateToken(std::string(header_token));
    if (!actor) return tl::unexpected(actor.error());
    context.actor = std::move(*actor);
    return Ok();
  }

  std::string session = CookieValue(request.Header("cookie"), kSessionCookie);
  // Sign-in is checked too, so another site cannot sign a browser into an account.
  bool signs_in = route.pattern == "/api/v1/auth/login" ||
                  (route.pattern == "/login" && request.method == "POST");
  bool checks_origin = !session.empty() || signs_in;
  if (checks_origin && !IsNavigable(request, route)) {
    std::string_view site = request.Header("sec-fetch-site");
    if (site == "cross-site" || site == "same-site") {
      return MakeError(ErrorCode::kForbidden, "cross-site requests with a session cookie are rejected; send a token instead");
    }
    std::string_view origin = request.Header("origin");
    if (!origin.empty()) {
      std::string expected = deps_.config.base_url.empty()
                                 ? "https://" + std::string(request.Header("host"))
                                 : OriginOf(deps_.config.base_url);
      if (OriginOf(std::string(origin)) != expected) {
        return MakeError(ErrorCode::kForbidden, "requests from origin " + std::string(origin) +
                                                    " are refused");
      }
    }
  }
  if (session.empty()) return Ok();

  auto actor = deps_.auth.AuthenticateSession(session);
  if (!actor) {
    // A stale cookie on a public page is harmless; elsewhere the route's access decides.
    return Ok();
  }
  context.actor = std::move(*actor);
  context.cookie_session = true;
  if (IsUnsafe(request.method) &&
      !deps_.auth.CheckCsrf(context.actor->session_hash, std::string(request.Header("x-csrf-token")))) {
    return MakeError(ErrorCode::kForbidden,
                     "missing or wrong X-CSRF-Token header: send the csrfToken from /auth/me");
  }
  return Ok();
}

http::Response Api::Dispatch(http::Request& request, std::string& route_label) {
  RouteMatch match = router_.Match(request.method, request.path);
  if (match.route == nullptr) {
    route_label = "unmatched";
    if (match.method_not_allowed) {
      return http::ErrorResponse(
          Error{ErrorCode::kMethodNotAllowed, request.method + " is not allowed on " + request.path},
          request.request_id);
    }
    return http::ErrorResponse(Error{ErrorCode::kNotFound, "no such resource: " + request.path},
                               request.request_id);
  }
  const Route& route = *match.route;
  route_label = route.pattern;

  RequestContext context{request, std::move(match.params), std::nullopt, false};
  if (auto status = Authenticate(context, route); !status) {
    return http::ErrorResponse(status.error(), request.request_id);
  }
  if (route.access != Access::kPublic && !context.actor) {
    return http::ErrorResponse(Error{ErrorCode::kUnauthenticated, "sign in first"},
                               request.request_id);
  }
  if (route.access == Access::kAdmin && !context.actor->IsAdmin()) {
    return http::ErrorResponse(Error{ErrorCode::kForbidden, "only admins may do this"},
                               request.request_id);
  }

  Result<http::Response> response = route.handler(context);
  if (!response) {
    if (response.error().code == ErrorCode::kInternal) {
      log::Error("request failed", {{"request_id", request.request_id},
                                    {"path", request.path},
                                    {"error", response.error().message}});
    }
    return http::ErrorResponse(response.error(), request.request_id);
  }
  return std::move(*response);
}

http::Response Api::Handle(http::Request& request) {
  std::string route_label;
  http::Response response = Dispatch(request, route_label);

  response.SetHeader("x-content-type-options", "nosniff");
  response.SetHeader("x-frame-options", "DENY");
  response.SetHeader("referrer-policy", "same-origin");
  response.SetHeader("strict-transport-security", "max-age=31536000");
  if (response.Header("cache-control").empty()) response.SetHeader("cache-control", "no-store");
  if (response.Header("content-security-policy").empty()) {
    response.SetHeader("content-security-policy", "default-src 'self'; frame-ancestors 'none'");
  }
  deps_.metrics.Increment("puddle_http_requests_total",
                          {{"route", route_label},
                           {"method", request.method},
                           {"status", std::to_string(response.status)}});
  return response;
}

}  // namespace puddle::api
