// AccessProxy: the access policy of Puddle's authenticating reverse proxy.
//
// Decide() runs first for every request, from its head alone, and sorts it by
// its Host header (see SystemOrigins):
// - Puddle's own host: the programs' path /systems/<id>/... is forwarded to
//   the product for a header token (X-Puddle-Token or Bearer) of the owner or
//   an admin; cookies never count there. Everything else is left to the REST
//   API (an empty decision).
// - <id>.<systemsDomain>: the system's own origin. /.puddle/ belongs to
//   Puddle (/.puddle/session exchanges a one-time code for the system cookie)
//   and is never forwarded; every other path goes unchanged to the product
//   for a valid system cookie of the owner or an admin. A WebSocket upgrade
//   and every method but GET, HEAD and OPTIONS must carry this origin's exact
//   Origin. Puddle's API, pages and /healthz are never served here.
// - Any other host: 404, so the API never answers for a name that an
//   attacker's DNS points at Puddle (DNS rebinding).
//
// Forwarded requests lose Puddle's credentials (its cookies, X-Puddle-Token,
// Authorization) and the client's Origin, which Puddle checked already, and
// gain the product's credential (Authorization: token <t>), Host (the
// product's address, which Jupyter checks) and X-Forwarded-For/Proto/Host.
// Cookies other than Puddle's stay on system origins: they are the product's
// own. Each forwarded request, and each WebSocket message a client sends, is
// reported to the activity sink when there is one.
//
// Access is also re-checked while a forwarded exchange lasts (a WebSocket, a
// long download): every recheck_interval its ProxyTarget::still_allowed
// authenticates the same credential afresh (the system cookie with the
// session it came from, or the header token) and checks again that its user
// is the owner or an admin and that the system is not deleted; the server
// closes the connection once that fails.
//
// Open() answers GET /api/v1/systems/{id}/open on Puddle's origin with a
// redirect that carries a one-time code to the system's origin.
//
// Thread-safe: Decide() and Open() run on the server's handler threads.
// The still_allowed callbacks it hands out refer to this object and its
// dependencies, which must therefore outlive the server's Stop().
//
// Limitations: the product is reached by the address the store holds; a
// system that moved (a restart on another port) answers 503 until the store
// has the new address. Request and response bodies are not inspected.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "api/http.h"
#include "auth/auth_service.h"
#include "auth/system_access.h"
#include "config/config.h"
#include "config/system_origins.h"
#include "services/activity/activity_sink.h"
#include "services/actor.h"
#include "services/systems/system_service.h"
#include "storage/store.h"

namespace puddle::proxy {

inline constexpr char kSystemCookie[] = "__Host-puddle_system";

// Largest request body forwarded to a product: uploads of data sets go
// through the proxy, so this is far above the API's 1 MiB.
inline constexpr size_t kMaxProxiedBodyBytes = size_t{16} << 30;  // 16 GiB

struct AccessProxyDependencies {
  const Config& config;
  Store& store;
  AuthService& auth;
  SystemAccessService& access;
  SystemService& systems;
  // Told about forwarded requests and WebSocket messages; may be null.
  ActivitySink* activity = nullptr;
  // How often an open forwarded exchange re-checks its access. A check costs
  // three primary-key reads, so 100 open WebSockets cost about 60 reads a
  // second, and a revoked user keeps a socket for about 5 s (longer while
  // every handler thread is busy).
  std::chrono::milliseconds recheck_interval = std::chrono::seconds(5);
};

class AccessProxy {
 public:
  explicit AccessProxy(AccessProxyDependencies dependencies);

  // The head handler: answer, forward, or (empty decision) leave the request to the API.
  http::HeadDecision Decide(const http::Request& request);

  // GET /api/v1/systems/{id}/open?next=<path>. `actor` is the signed-in user,
  // if any; a code needs a browser session (actor->session_hash).
  Result<http::Response> Open(const std::optional<Actor>& actor, const http::Request& request,
                              const std::string& system_id, const std::optional<std::string>& next);

  const SystemOrigins& origins() const { return origins_; }

 private:
  // The system, its base-path mode and its product token, for forwarding.
  struct Destination {
    System system;
    std::string base_path_mode;
    std::string token;
  };

  http::HeadDecision DecideSystemOrigin(const http::Request& request, const std::string& system_id);
  http::HeadDecision DecideProgramsPath(const http::Request& request);
  http::HeadDecision ExchangeCode(const http::Request& request, const std::string& system_id);
  // Loads a system `actor` may use and that runs; not_found or unavailable otherwise.
  Result<Destination> LoadDestination(const Actor& actor, const std::string& system_id);
  http::ProxyTarget Target(const http::Request& request, const Destination& destination,
                           std::string target, bool keep_product_cookies);
  void ReportRequest(const std::string& system_id, const std::string& method,
                     const std::string& path);
  // ProxyTarget::still_allowed for a request that `user_id` sent with a
  // system cookie or with a header token.
  std::function<bool()> RecheckCookie(std::string cookie, std::string system_id,
                                      std::string user_id);
  std::function<bool()> RecheckToken(std::string token, std::string system_id,
                                     std::string user_id);
  // Whether `actor`, authenticated afresh, is still `user_id` and may use the system.
  bool MayStillUse(const Result<Actor>& actor, const std::string& user_id,
                   const std::string& system_id);

  AccessProxyDependencies deps_;
  SystemOrigins origins_;
};

// Values of the header credential (X-Puddle-Token, else Authorization:
// Bearer), or "" when there is none.
std::string HeaderToken(const http::Request& request);

// True for /.puddle and paths under it, which belong to Puddle on system origins.
bool IsPuddlePath(std::string_view path);

// True when `next` is a path on the current origin: one leading "/", not
// "//", no backslash or control character, and not under /.puddle/.
bool IsSafeNext(std::string_view next);

}  // namespace puddle::proxy
