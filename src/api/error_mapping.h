// The one place where Error codes become HTTP statuses and error bodies.
#pragma once

#include <string_view>

#include "api/http.h"
#include "common/result.h"

namespace puddle::http {

int HttpStatusFor(ErrorCode code);

// Builds {"error": {"code","message","field"?,"status"?,"requestId"}} with the
// matching status, and Retry-After for rate_limited.
Response ErrorResponse(const Error& error, std::string_view request_id);

}  // namespace puddle::http
