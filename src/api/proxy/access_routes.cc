#include "api/proxy/access_routes.h"

#include "api/handler_support.h"

namespace puddle::proxy {

void AddAccessRoutes(api::Router& router, AccessProxy& proxy) {
  // Public, so that a browser without a session is sent to sign in first.
  router.Add({"GET",
              "/api/v1/systems/{id}/open",
              api::Access::kPublic,
              [&proxy](api::RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(api::CheckQuery(context, {"next"}));
                return proxy.Open(context.actor, context.request, context.params.at("id"),
                                  api::QueryValue(context, "next"));
              },
              {"Open a system in the browser: a redirect to the system's own origin with a "
               "one-time code (a top-level navigation with the session cookie)",
               "systems",
               302,
               "",
               "",
               {"next"}}});
}

}  // namespace puddle::proxy
