#include "api/handler_support.h"

#include "common/json.h"

namespace puddle::api {

Result<boost::json::object> ParseBody(const RequestContext& context) {
  std::string_view type = context.request.Header("content-type");
  std::string media(type.substr(0, type.find(';')));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  // Media types are case-insensitive (RFC 9110, section 8.3.1).
  for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (media != "application/json") {
    return MakeError(ErrorCode::kUnsupportedMediaType,
                     "send the request body as JSON with Content-Type: application/json");
  }
  return json::ParseObject(context.request.body);
}

Status CheckQuery(const RequestContext& context, std::initializer_list<std::string_view> allowed) {
  for (const auto& [name, value] : context.request.query) {
    bool known = false;
    for (auto candidate : allowed) known = known || candidate == name;
    if (!known) {
      return MakeError(ErrorCode::kUnknownField, "unknown query parameter \"" + name + "\"",
                       "query." + name);
    }
  }
  return Ok();
}

std::optional<std::string> QueryValue(const RequestContext& context, std::string_view name) {
  for (const auto& [key, value] : context.request.query) {
    if (key == name) return value;
  }
  return std::nullopt;
}

Result<PageRequest> ParsePage(const RequestContext& context) {
  PageRequest page;
  if (auto limit = QueryValue(context, "limit")) {
    int parsed = 0;
    bool digits = !limit->empty() && limit->size() <= 3 &&
                  limit->find_first_not_of("0123456789") == std::string::npos;
    if (digits) parsed = std::stoi(*limit);
    if (!digits || parsed < 1 || parsed > 500) {
      return MakeError(ErrorCode::kValidationFailed, "limit must be an integer from 1 to 500",
                       "query.limit");
    }
    page.limit = parsed;
  }
  if (auto cursor = QueryValue(context, "cursor")) page.cursor = *cursor;
  return page;
}

http::Response JsonReply(int status, const boost::json::value& body) {
  // Money in plain decimals (0.05, never 5E-2).
  return http::JsonResponse(status, json::Serialize(body));
}

http::Response NoContent() {
  http::Response response;
  response.status = 204;
  return response;
}

const Actor& ActorOf(const RequestContext& context) { return *context.actor; }

}  // namespace puddle::api
