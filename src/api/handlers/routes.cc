#include "api/handlers/routes.h"

namespace puddle::api {

void AddRoutes(Router& router, ApiDependencies& deps) {
  AddMetaRoutes(router, deps);
  AddAuthRoutes(router, deps);
  AddUserRoutes(router, deps);
  AddCatalogRoutes(router, deps);
  AddSystemRoutes(router, deps);
  AddCostRoutes(router, deps);
}

}  // namespace puddle::api
