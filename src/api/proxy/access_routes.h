// The REST route that belongs to the access proxy: GET /api/v1/systems/{id}/open.
#pragma once

#include "api/proxy/access_proxy.h"
#include "api/router.h"

namespace puddle::proxy {

// Adds the route to `router`; `proxy` must outlive it.
void AddAccessRoutes(api::Router& router, AccessProxy& proxy);

}  // namespace puddle::proxy
