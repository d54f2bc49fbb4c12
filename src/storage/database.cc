#include "storage/database.h"

namespace puddle::sql {

bool Row::IsNull(size_t column) const {
  return column >= values_.size() || std::holds_alternative<std::monostate>(values_[column]);
}

std::string Row::Text(size_t column) const {
  if (IsNull(column)) return {};
  const Value& value = values_[column];
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  if (const auto* number = std::get_if<int64_t>(&value)) return std::to_string(*number);
  return std::to_string(std::get<double>(value));
}

int64_t Row::Int(size_t column) const {
  if (IsNull(column)) return 0;
  const Value& value = values_[column];
  if (const auto* number = std::get_if<int64_t>(&value)) return *number;
  if (const auto* real = std::get_if<double>(&value)) return static_cast<int64_t>(*real);
  return std::stoll(std::get<std::string>(value));
}

double Row::Real(size_t column) const {
  if (IsNull(column)) return 0;
  const Value& value = values_[column];
  if (const auto* real = std::get_if<double>(&value)) return *real;
  if (const auto* number = std::get_if<int64_t>(&value)) return static_cast<double>(*number);
  return std::stod(std::get<std::string>(value));
}

std::optional<std::string> Row::OptionalText(size_t column) const {
  if (IsNull(column)) return std::nullopt;
  return Text(column);
}

std::optional<int64_t> Row::OptionalInt(size_t column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

std::optional<double> Row::OptionalReal(size_t column) const {
  if (IsNull(column)) return std::nullopt;
  return Real(column);
}

}  // namespace puddle::sql
