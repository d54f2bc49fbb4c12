// Api: Puddle's REST API and pages behind one http::Handler.
//
// Handle() authenticates the request (session cookie with CSRF and
// cross-site checks, or a header token), matches the route table, enforces
// the route's access, runs the handler and maps errors to responses in one
// place. Thread-safe: it runs on the server's handler threads.
#pragma once

#include <string>

#include "api/http.h"
#include "api/router.h"
#include "auth/auth_service.h"
#include "common/metrics.h"
#include "config/config.h"
#include "services/catalog/catalog_service.h"
#include "services/systems/system_service.h"
#include "services/users/user_service.h"

namespace puddle::api {

struct ApiDependencies {
  const Config& config;
  Store& store;
  AuthService& auth;
  UserService& users;
  CatalogService& catalog;
  SystemService& systems;
  Metrics& metrics;
};

inline constexpr char kSessionCookie[] = "__Host-puddle_session";

class Api {
 public:
  explicit Api(ApiDependencies dependencies);

  http::Response Handle(http::Request& request);
  const Router& router() const { return router_; }
  // For routes registered outside AddRoutes (the access proxy's /open);
  // call only before the server starts.
  Router& mutable_router() { return router_; }

 private:
  http::Response Dispatch(http::Request& request, std::string& route_label);
  // Resolves credentials; fills context.actor. Errors only for invalid
  // cross-site or CSRF use of a cookie session.
  Status Authenticate(RequestContext& context, const Route& route);

  ApiDependencies deps_;
  Router router_;
};

}  // namespace puddle::api
