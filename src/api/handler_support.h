// Helpers shared by the route handlers: body and query parsing, JSON replies.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "api/http.h"
#include "api/router.h"
#include "common/result.h"
#include "storage/store.h"

namespace puddle::api {

// Requires a JSON body (415 without application/json) and parses it as an object.
Result<boost::json::object> ParseBody(const RequestContext& context);

// Rejects query parameters outside `allowed` (unknown_field "query.<name>").
Status CheckQuery(const RequestContext& context, std::initializer_list<std::string_view> allowed);

// The value of query parameter `name`, or nullopt.
std::optional<std::string> QueryValue(const RequestContext& context, std::string_view name);

// Reads ?limit= (1-500, default 50) and ?cursor=.
Result<PageRequest> ParsePage(const RequestContext& context);

http::Response JsonReply(int status, const boost::json::value& body);
http::Response NoContent();

// The signed-in actor; handlers of routes with Access::kPublic must not call it.
const Actor& ActorOf(const RequestContext& context);

}  // namespace puddle::api
