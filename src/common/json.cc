#include "common/json.h"

#include <charconv>
#include <cmath>

namespace puddle::json {

Result<boost::json::object> ParseObject(std::string_view body) {
  if (body.empty()) return boost::json::object();
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(body, error);
  if (error) {
    return MakeError(ErrorCode::kInvalidJson, "request body is not valid JSON: " + error.message());
  }
  if (!value.is_object()) {
    return MakeError(ErrorCode::kInvalidJson, "request body must be a JSON object");
  }
  return std::move(value.as_object());
}

Status RejectUnknownFields(const boost::json::object& object,
                           std::initializer_list<std::string_view> allowed,
                           std::string_view prefix) {
  for (const auto& entry : object) {
    bool known = false;
    for (std::string_view name : allowed) {
      if (entry.key() == name) known = true;
    }
    if (!known) {
      std::string field = std::string(prefix) + std::string(entry.key());
      return MakeError(ErrorCode::kUnknownField, "unknown field \"" + field + "\"", field);
    }
  }
  return Ok();
}

namespace {

tl::unexpected<Error> WrongType(std::string_view key, std::string_view expected) {
  return MakeError(ErrorCode::kValidationFailed,
                   std::string(key) + " must be " + std::string(expected), std::string(key));
}

const boost::json::value* Find(const boost::json::object& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

}  // namespace

Result<std::string> RequiredString(const boost::json::object& object, std::string_view key) {
  const auto* value = Find(object, key);
  if (value == nullptr) {
    return MakeError(ErrorCode::kValidationFailed, std::string(key) + " is required",
                     std::string(key));
  }
  if (!value->is_string()) return WrongType(key, "a string");
  return std::string(value->as_string());
}

Result<std::optional<std::string>> OptionalString(const boost::json::object& object,
                                                  std::string_view key) {
  const auto* value = Find(object, key);
  if (value == nullptr) return std::optional<std::string>();
  if (!value->is_string()) return WrongType(key, "a string");
  return std::optional<std::string>(std::string(value->as_string()));
}

Result<std::optional<int64_t>> OptionalInt(const boost::json::object& object,
                                           std::string_view key) {
  const auto* value = Find(object, key);
  if (value == nullptr) return std::optional<int64_t>();
  if (value->is_int64()) return std::optional<int64_t>(value->as_int64());
  if (value->is_uint64() && value->as_uint64() <= INT64_MAX) {
    return std::optional<int64_t>(static_cast<int64_t>(value->as_uint64()));
  }
  if (value->is_double()) {
    double number = value->as_double();
    if (std::floor(number) == number && std::fabs(number) < 9e15) {
      return std::optional<int64_t>(static_cast<int64_t>(number));
    }
  }
  return WrongType(key, "an integer");
}

Result<std::optional<double>> OptionalNumber(const boost::json::object& object,
                                             std::string_view key) {
  const auto* value = Find(object, key);
  if (value == nullptr) return std::optional<double>();
  if (!value->is_number()) return WrongType(key, "a number");
  return std::optional<double>(value->to_number<double>());
}

Result<std::optional<bool>> OptionalBool(const boost::json::object& object, std::string_view key) {
  const auto* value = Find(object, key);
  if (value == nullptr) return std::optional<bool>();
  if (!value->is_bool()) return WrongType(key, "true or false");
  return std::optional<bool>(value->as_bool());
}

namespace {

bool IsNumberChar(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// Appends number token `token` to `out`, in plain notation when it has an exponent.
void AppendNumber(std::string_view token, std::string& out) {
  if (token.find_first_of("eE") == std::string_view::npos) {
    out += token;
    return;
  }
  double number = 0;
  auto parsed = std::from_chars(token.data(), token.data() + token.size(), number);
  if (parsed.ec != std::errc() || !std::isfinite(number) || std::fabs(number) >= 1e21) {
    out += token;
    return;
  }
  char buffer[64];
  auto written = std::to_chars(buffer, buffer + sizeof(buffer), number, std::chars_format::fixed);
  if (written.ec != std::errc()) {
    out += token;
    return;
  }
  out.append(buffer, written.ptr);
}

}  // namespace

std::string PlainNumbers(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  bool in_string = false;
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[i + 1];
        i += 2;
        continue;
      }
      if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      ++i;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t end = i;
      while (end < text.size() && IsNumberChar(text[end])) ++end;
      AppendNumber(text.substr(i, end - i), out);
      i = end;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

std::string Serialize(const boost::json::value& value) {
  return PlainNumbers(boost::json::serialize(value));
}

double RoundMoney(double amount) { return std::round(amount * 10000.0) / 10000.0; }

}  // namespace puddle::json
