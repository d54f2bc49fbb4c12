#include "config/value_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace puddle::config {
namespace {

ParsedValue TypeProblem(ParsedValue parsed, std::string text, int item = -1) {
  parsed.problem = ValueProblem{std::move(text), item};
  return parsed;
}

ParsedValue TypeProblem(std::string text) { return TypeProblem(ParsedValue{}, std::move(text)); }

int LineOf(const YAML::Node& node) {
  int line = node.Mark().line;
  return line < 0 ? 0 : line + 1;
}

// Describes what `node` holds, quoting a scalar unless it is secret.
std::string Describe(const YAML::Node& node, bool secret) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar:
      return secret ? std::string("a value of another type") : "\"" + node.Scalar() + "\"";
    default: return "an undefined value";
  }
}

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

std::optional<int64_t> ParseInt(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  int64_t number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return number;
}

ParsedValue ParseScalar(const YAML::Node& node, ValueType type, bool secret) {
  ParsedValue parsed;
  const std::string& text = node.Scalar();
  switch (type) {
    case ValueType::kString: parsed.value.text = text; return parsed;
    case ValueType::kBool: {
      auto flag = ParseBool(text);
      if (!flag) return TypeProblem("expected true or false, got " + Describe(node, secret));
      parsed.value.flag = *flag;
      return parsed;
    }
    case ValueType::kInt: {
      auto number = ParseInt(text);
      if (!number) return TypeProblem("expected an integer, got " + Describe(node, secret));
      parsed.value.number = *number;
      return parsed;
    }
    default: return TypeProblem("internal error: not a scalar type");
  }
}

ParsedValue ParseStringList(const YAML::Node& node, bool secret) {
  if (!node.IsSequence()) {
    return TypeProblem("expected a list of strings, such as [a, b], got " + Describe(node, secret));
  }
  ParsedValue parsed;
  int index = 0;
  for (const YAML::Node& item : node) {
    parsed.item_lines.push_back(LineOf(item));
    parsed.item_names.push_back("[" + std::to_string(index) + "]");
    if (!item.IsScalar()) {
      return TypeProblem(std::move(parsed), "expected a string, got " + Describe(item, secret),
                         index);
    }
    parsed.value.items.push_back(item.Scalar());
    ++index;
  }
  return parsed;
}

ParsedValue ParseLabelMap(const YAML::Node& node, ValueType type, bool secret) {
  const bool minutes = type == ValueType::kLabelMinutesMap;
  if (!node.IsMap()) {
    return TypeProblem(std::string("expected a mapping of label: ") +
                       (minutes ? "minutes, such as {1h: 60, Never: -1}" : "value") + ", got " +
                       Describe(node, secret));
  }
  ParsedValue parsed;
  std::set<std::string> labels;
  int index = 0;
  for (const auto& entry : node) {
    const YAML::Node& label = entry.first;
    const YAML::Node& value = entry.second;
    std::string name = label.IsScalar() ? label.Scalar() : std::string();
    parsed.item_lines.push_back(LineOf(label));
    parsed.item_names.push_back("." + name);
    if (!label.IsScalar()) return TypeProblem(std::move(parsed), "labels must be strings", index);
    if (!labels.insert(name).second) {
      return TypeProblem(std::move(parsed), "label \"" + name + "\" appears twice; keep one",
                         index);
    }
    if (minutes) {
      std::optional<int64_t> number = value.IsScalar() ? ParseInt(value.Scalar()) : std::nullopt;
      if (!number) {
        return TypeProblem(std::move(parsed),
                           "expected minutes as an integer, got " + Describe(value, secret), index);
      }
      parsed.value.labeled.emplace_back(name, *number);
    } else if (!value.IsScalar() && !value.IsNull()) {
      return TypeProblem(std::move(parsed), "expected a string, got " + Describe(value, secret),
                         index);
    }
    ++index;
  }
  return parsed;
}

ParsedValue ParseRange(const YAML::Node& node, bool secret) {
  const std::string expected = "expected \"min-max\" or [min, max], got ";
  std::optional<int64_t> low;
  std::optional<int64_t> high;
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    size_t dash = text.find('-', 1);
    if (dash != std::string::npos) {
      low = ParseInt(Trim(std::string_view(text).substr(0, dash)));
      high = ParseInt(Trim(std::string_view(text).substr(dash + 1)));
    }
  } else if (node.IsSequence() && node.size() == 2 && node[0].IsScalar() && node[1].IsScalar()) {
    low = ParseInt(node[0].Scalar());
    high = ParseInt(node[1].Scalar());
  }
  if (!low || !high) return TypeProblem(expected + Describe(node, secret));
  if (*low > *high) {
    return TypeProblem("invalid range " + std::to_string(*low) + "-" + std::to_string(*high) +
                       ": min is larger than max");
  }
  ParsedValue parsed;
  parsed.value.range_min = *low;
  parsed.value.range_max = *high;
  return parsed;
}

}  // namespace

std::optional<bool> ParseBool(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

bool HasValue(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return !node.Scalar().empty();
    case YAML::NodeType::Sequence:
    case YAML::NodeType::Map: return node.size() > 0;
    default: return false;
  }
}

ParsedValue ParseValue(const YAML::Node& node, ValueType type, bool secret) {
  switch (type) {
    case ValueType::kString:
    case ValueType::kBool:
    case ValueType::kInt: {
      if (!node.IsScalar()) {
        std::string want = type == ValueType::kString ? "a string"
                           : type == ValueType::kBool ? "true or false"
                                                      : "an integer";
        return TypeProblem("expected " + want + ", got " + Describe(node, secret));
      }
      return ParseScalar(node, type, secret);
    }
    case ValueType::kStringList: return ParseStringList(node, secret);
    case ValueType::kStringMap:
    case ValueType::kLabelMinutesMap: return ParseLabelMap(node, type, secret);
    case ValueType::kRange: return ParseRange(node, secret);
  }
  return TypeProblem("internal error: unknown type");
}

}  // namespace puddle::config
