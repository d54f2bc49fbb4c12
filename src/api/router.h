// Router: the route table, which is the API's table of contents.
//
// Each route names its method, path pattern ("/api/v1/systems/{id}"), who may
// call it, and the facts the OpenAPI document is generated from, so the
// document cannot list a route that does not exist or miss one that does.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/http.h"
#include "common/result.h"
#include "services/actor.h"

namespace puddle::api {

enum class Access {
  kPublic,     // no credential needed
  kSignedIn,   // any signed-in user
  kAdmin,      // admins only
};

struct RequestContext {
  http::Request& request;
  std::map<std::string, std::string> params;  // path parameters
  std::optional<Actor> actor;
  bool cookie_session = false;  // authenticated by the browser session cookie
};

using RouteHandler = std::function<Result<http::Response>(RequestContext&)>;

// What the OpenAPI document says about a route.
struct RouteDoc {
  std::string summary;
  std::string tag;
  int success_status = 200;
  std::string request_schema;   // component name, empty when no body
  std::string response_schema;  // component name, empty for no JSON body
  std::vector<std::string> query;  // accepted query parameters
};

struct Route {
  std::string method;
  std::string pattern;
  Access access = Access::kSignedIn;
  RouteHandler handler;
  RouteDoc doc;
};

struct RouteMatch {
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
  // Set when the path exists but not for this method.
  bool method_not_allowed = false;
};

class Router {
 public:
  void Add(Route route);
  RouteMatch Match(const std::string& method, const std::string& path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace puddle::api
