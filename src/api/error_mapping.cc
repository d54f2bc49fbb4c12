#include "api/error_mapping.h"

#include <boost/json.hpp>

namespace puddle::http {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidJson:
    case ErrorCode::kUnknownField:
    case ErrorCode::kValidationFailed: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kForbidden: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kMethodNotAllowed: return 405;
    case ErrorCode::kConflict:
    case ErrorCode::kNameTaken:
    case ErrorCode::kQuotaExceeded:
    case ErrorCode::kBudgetExceeded: return 409;
    case ErrorCode::kPayloadTooLarge: return 413;
    case ErrorCode::kUnsupportedMediaType: return 415;
    case ErrorCode::kRateLimited: return 429;
    case ErrorCode::kInternal: return 500;
    case ErrorCode::kUnavailable: return 503;
  }
  return 500;
}

Response ErrorResponse(const Error& error, std::string_view request_id) {
  boost::json::object body;
  body["code"] = ErrorCodeName(error.code);
  // Internal details stay in the operator's log; users get a generic message.
  body["message"] = error.code == ErrorCode::kInternal ? "internal error" : error.message;
  if (!error.field.empty()) body["field"] = error.field;
  if (!error.status.empty()) body["status"] = error.status;
  body["requestId"] = request_id;
  boost::json::object wrapper;
  wrapper["error"] = std::move(body);

  Response response = JsonResponse(HttpStatusFor(error.code), boost::json::serialize(wrapper));
  if (error.code == ErrorCode::kRateLimited) {
    response.SetHeader("retry-after", std::to_string(std::max(1, error.retry_after_seconds)));
  }
  if (error.code == ErrorCode::kUnauthenticated) {
    response.SetHeader("www-authenticate", "Bearer");
  }
  return response;
}

}  // namespace puddle::http
