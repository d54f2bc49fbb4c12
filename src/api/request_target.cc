#include "api/request_target.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace puddle::http {

Result<RequestTarget> ParseRequestTarget(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) {
    return MakeError(ErrorCode::kValidationFailed,
                     "request target is not a valid path and query: " + url.error().message());
  }

  RequestTarget parsed;
  parsed.path = url->path();
  if (parsed.path.find('\0') != std::string::npos) {
    return MakeError(ErrorCode::kValidationFailed, "request path contains an encoded NUL byte");
  }

  // An empty query ("/a?") has no parameters rather than one with an empty name.
  if (!url->encoded_query().empty()) {
    for (const auto& param : url->params()) {
      parsed.query.emplace_back(param.key, param.value);
    }
  }
  return parsed;
}

}  // namespace puddle::http
