// Builds the OpenAPI 3.1 document from the route table.
#pragma once

#include <boost/json.hpp>

#include "api/router.h"

namespace puddle::api {

boost::json::object BuildOpenApi(const Router& router);

// Component schemas the document defines, by name.
const boost::json::object& OpenApiSchemas();

}  // namespace puddle::api
