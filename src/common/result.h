// Result<T> and Error: the one error type that crosses Puddle's layers.
//
// Every fallible function returns Result<T> (or Status for no value). An Error
// carries a code from a short closed list, a message that is safe to show to
// the user who made the request, and an optional detail for operators' logs.
// Each layer adds context with WithContext(); the layer that handles an error
// logs it. api/error_mapping.cc is the one place that maps codes to HTTP.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace puddle {

enum class ErrorCode {
  kInvalidJson,           // 400 invalid_json
  kUnknownField,          // 400 unknown_field
  kValidationFailed,      // 400 validation_failed
  kUnauthenticated,       // 401
  kForbidden,             // 403
  kNotFound,              // 404
  kMethodNotAllowed,      // 405
  kConflict,              // 409 conflict (status names the current status)
  kNameTaken,             // 409
  kQuotaExceeded,         // 409
  kBudgetExceeded,        // 409
  kPayloadTooLarge,       // 413
  kUnsupportedMediaType,  // 415
  kRateLimited,           // 429
  kInternal,              // 500
  kUnavailable,           // 503
};

// Returns the API's snake_case name for `code` ("validation_failed").
std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  // Safe to return to the requesting user.
  std::string message;
  // JSON field the error is about ("systemType", "query.limit"), if any.
  std::string field;
  // Current status of the resource, for kConflict.
  std::string status;
  // Seconds a client should wait, for kRateLimited.
  int retry_after_seconds = 0;

  // Returns a copy whose message is "<context>: <message>".
  Error WithContext(std::string_view context) const;
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> MakeError(ErrorCode code, std::string message,
                                       std::string field = {}) {
  Error error;
  error.code = code;
  error.message = std::move(message);
  error.field = std::move(field);
  return tl::unexpected<Error>(std::move(error));
}

inline tl::unexpected<Error> InternalError(std::string message) {
  return MakeError(ErrorCode::kInternal, std::move(message));
}

inline tl::unexpected<Error> ConflictError(std::string message, std::string status) {
  Error error;
  error.code = ErrorCode::kConflict;
  error.message = std::move(message);
  error.status = std::move(status);
  return tl::unexpected<Error>(std::move(error));
}

inline Status Ok() { return {}; }

// Returns the error of `expr` (a Result or Status) from the enclosing function.
#define PUDDLE_RETURN_IF_ERROR(expr)                              \
  do {                                                            \
    auto puddle_status_ = (expr);                                 \
    if (!puddle_status_) return tl::unexpected(puddle_status_.error()); \
  } while (false)

#define PUDDLE_CONCAT_INNER(a, b) a##b
#define PUDDLE_CONCAT(a, b) PUDDLE_CONCAT_INNER(a, b)

// Declares `lhs` from the value of `expr`, or returns its error.
#define PUDDLE_ASSIGN_OR_RETURN(lhs, expr) \
  PUDDLE_ASSIGN_OR_RETURN_IMPL(PUDDLE_CONCAT(puddle_result_, __LINE__), lhs, expr)
#define PUDDLE_ASSIGN_OR_RETURN_IMPL(result, lhs, expr)  \
  auto result = (expr);                                  \
  if (!result) return tl::unexpected(result.error());    \
  lhs = std::move(*result)

}  // namespace puddle
