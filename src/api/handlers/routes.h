// Registration of every route, one function per resource area.
#pragma once

#include "api/api.h"
#include "api/router.h"

namespace puddle::api {

void AddRoutes(Router& router, ApiDependencies& deps);

void AddAuthRoutes(Router& router, ApiDependencies& deps);
void AddUserRoutes(Router& router, ApiDependencies& deps);
void AddCatalogRoutes(Router& router, ApiDependencies& deps);
void AddSystemRoutes(Router& router, ApiDependencies& deps);
void AddCostRoutes(Router& router, ApiDependencies& deps);
// Health, metrics, OpenAPI and the sign-in page; `router` is read when serving the spec.
void AddMetaRoutes(Router& router, ApiDependencies& deps);

}  // namespace puddle::api
