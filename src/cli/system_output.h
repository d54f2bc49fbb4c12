// The readable (non-JSON) output of the systems commands.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace puddle::cli {

// Returns a field of `object` as text: strings as they are, numbers with at
// most 4 decimals, booleans as true/false, and "-" for null or missing.
std::string FieldText(const boost::json::object& object, std::string_view key);

// Prints one line per system under a header: id, name, owner, product and
// version, system type, status, creation time.
void PrintSystemsTable(const boost::json::array& systems, std::ostream& out);

// Prints one system as "Label: value" lines.
void PrintSystemSummary(const boost::json::object& system, std::ostream& out);

}  // namespace puddle::cli
