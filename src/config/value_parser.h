// Checks a YAML value against a key's declared type.
//
// Internal to the config library.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.h"

namespace puddle::config {

struct ParsedValue {
  ConfigValue value;
  // Set when `node` is not of the expected type; `value` is then incomplete.
  std::optional<ValueProblem> problem;
  // Per list item or map entry: 1-based line (0 when unknown) and a name for
  // messages ("[2]" for a list item, ".2h" for a map entry).
  std::vector<int> item_lines;
  std::vector<std::string> item_names;
};

// Converts `node` (not null) to `type`. A problem names the expected type and
// what was found; for `secret` values it never quotes the text. Item lines and
// names are filled up to and including the item at fault.
ParsedValue ParseValue(const YAML::Node& node, ValueType type, bool secret);

// Parses YAML 1.1 booleans: true/false, yes/no, on/off in any letter case.
std::optional<bool> ParseBool(std::string_view text);

// True when `node` contains something: a non-empty scalar, list or mapping.
bool HasValue(const YAML::Node& node);

}  // namespace puddle::config
