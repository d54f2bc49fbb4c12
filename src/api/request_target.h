// Splits an HTTP request target into its percent-decoded path and query.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace puddle::http {

struct RequestTarget {
  // Percent-decoded path. "." and ".." segments are kept and "%2F" becomes "/",
  // so code that maps paths to files must normalise and check them itself.
  std::string path;
  // Percent-decoded parameters in the order received; "+" decodes to a space.
  std::vector<std::pair<std::string, std::string>> query;
};

// Parses an origin-form target ("/a%20b?x=1&y=a+b"). Returns validation_failed
// when the target is not origin-form (absolute URLs and "*" included), has
// invalid percent-encoding, or its path decodes to a NUL byte.
Result<RequestTarget> ParseRequestTarget(std::string_view target);

}  // namespace puddle::http
