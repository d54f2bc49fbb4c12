#include "config/suggest.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "config/schema.h"

namespace puddle::config {
namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

size_t SegmentCount(std::string_view path) {
  return static_cast<size_t>(std::count(path.begin(), path.end(), '.')) + 1;
}

std::string_view LastSegment(std::string_view path) {
  size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

}  // namespace

size_t EditDistance(std::string_view a_text, std::string_view b_text) {
  std::string a = Lower(a_text);
  std::string b = Lower(b_text);
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string> SuggestKnownPath(std::string_view path) {
  // One edit per six characters, between 1 and 3: "lisen" finds listen, and
  // long keys tolerate a few typos without matching unrelated keys.
  const size_t max_distance = std::clamp<size_t>(path.size() / 6, 1, 3);
  const size_t segments = SegmentCount(path);

  const std::string* best = nullptr;
  size_t best_distance = max_distance + 1;
  for (const std::string& known : KnownPaths()) {
    if (SegmentCount(known) != segments) continue;
    size_t distance = EditDistance(path, known);
    if (distance < best_distance) {
      best = &known;
      best_distance = distance;
    }
  }
  if (best != nullptr) return *best;

  const std::string* same_last_segment = nullptr;
  std::string last = Lower(LastSegment(path));
  for (const std::string& known : KnownPaths()) {
    if (Lower(LastSegment(known)) != last) continue;
    if (same_last_segment != nullptr) return std::nullopt;  // ambiguous
    same_last_segment = &known;
  }
  if (same_last_segment != nullptr) return *same_last_segment;
  return std::nullopt;
}

}  // namespace puddle::config
