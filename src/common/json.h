// Strict readers for JSON request bodies, over Boost.JSON.
//
// Errors follow the API's order of checks: invalid_json, then unknown_field,
// then validation_failed, each naming the camelCase field.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "common/result.h"

namespace puddle::json {

// Parses `body` as one JSON object; an empty body is an empty object.
Result<boost::json::object> ParseObject(std::string_view body);

// Fails with unknown_field naming the first key of `object` outside `allowed`.
// `prefix` is prepended to the field name for nested objects ("quota.").
Status RejectUnknownFields(const boost::json::object& object,
                           std::initializer_list<std::string_view> allowed,
                           std::string_view prefix = {});

// Each reader fails with validation_failed on `key` when the value has the
// wrong type; Required* also when the key is missing or null.
Result<std::string> RequiredString(const boost::json::object& object, std::string_view key);
Result<std::optional<std::string>> OptionalString(const boost::json::object& object,
                                                  std::string_view key);
Result<std::optional<int64_t>> OptionalInt(const boost::json::object& object,
                                           std::string_view key);
Result<std::optional<double>> OptionalNumber(const boost::json::object& object,
                                             std::string_view key);
Result<std::optional<bool>> OptionalBool(const boost::json::object& object, std::string_view key);

// Serializes compactly. Numbers that Boost.JSON would print in exponent form
// ("5E-2", "1E0") are printed in plain decimal notation instead ("0.05", "1"),
// the shortest text that reads back as the same double; magnitudes of 1e21
// and above keep the exponent.
std::string Serialize(const boost::json::value& value);

// Rewrites the exponent-form numbers of serialized JSON `text` as Serialize does.
std::string PlainNumbers(std::string_view text);

// Rounds money to 4 decimals, as the API reports it.
double RoundMoney(double amount);

}  // namespace puddle::json
