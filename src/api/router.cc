#include "api/router.h"

namespace puddle::api {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

bool MatchPattern(const std::string& pattern, const std::string& path,
                  std::map<std::string, std::string>& params) {
  auto want = Split(pattern);
  auto have = Split(path);
  if (want.size() != have.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& segment = want[i];
    if (segment.size() > 2 && segment.front() == '{' && segment.back() == '}') {
      if (have[i].empty()) return false;
      found[segment.substr(1, segment.size() - 2)] = have[i];
    } else if (segment != have[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

}  // namespace

void Router::Add(Route route) { routes_.push_back(std::move(route)); }

RouteMatch Router::Match(const std::string& method, const std::string& path) const {
  RouteMatch match;
  std::string effective = method == "HEAD" ? "GET" : method;
  for (const auto& route : routes_) {
    std::map<std::string, std::string> params;
    if (!MatchPattern(route.pattern, path, params)) continue;
    if (route.method != effective) {
      match.method_not_allowed = true;
      continue;
    }
    match.route = &route;
    match.params = std::move(params);
    match.method_not_allowed = false;
    return match;
  }
  return match;
}

}  // namespace puddle::api
