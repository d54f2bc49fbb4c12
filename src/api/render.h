// JSON renderings of domain objects, in the API's camelCase shapes.
#pragma once

#include <boost/json.hpp>

#include "model/catalog.h"
#include "model/system.h"
#include "model/user.h"
#include "services/actor.h"
#include "services/catalog/catalog_service.h"
#include "services/systems/system_service.h"

namespace puddle::api {

boost::json::object UserJson(const User& user);
boost::json::object ApiKeyJson(const ApiKey& key);
boost::json::object ImageJson(const Image& image);
boost::json::object ProductJson(const ProductView& product);
boost::json::object SystemTypeJson(const SystemType& type);
boost::json::object SystemJson(const SystemView& view, const Actor& actor);
boost::json::object OperationJson(const Operation& operation);
boost::json::object EventJson(const Event& event);
boost::json::object CostSessionJson(const CostSession& session, TimePoint now);

// {"items": [...], "nextCursor": "..." | null}
boost::json::object ListJson(boost::json::array items, const std::string& next_cursor);

}  // namespace puddle::api
