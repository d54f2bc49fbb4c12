// "Did you mean" suggestions for unknown config keys.
//
// Internal to the config library.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace puddle::config {

// Returns the optimal string alignment distance (Levenshtein plus adjacent
// transpositions) between `a` and `b`, ignoring ASCII letter case.
size_t EditDistance(std::string_view a, std::string_view b);

// Returns the accepted spelling or section closest to the unknown `path`: the
// nearest one with as many dotted segments, within a distance that grows with
// the length of `path`; else the only known path ending in the same last
// segment ("aws" -> "providers.aws").
std::optional<std::string> SuggestKnownPath(std::string_view path);

}  // namespace puddle::config
