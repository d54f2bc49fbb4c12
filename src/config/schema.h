// The config.yaml schema: every key Puddle accepts, declared once in schema.cc.
//
// Keys are grouped into parts. The part of Puddle's own settings is `used`: the
// loader reads and checks every value and stores it in Config. A used part with
// a switch (db.connection) is read only while its switch key has its switch
// value; otherwise its other keys are ignored with a warning. The other parts
// hold the original product's keys. An `ignored` part is accepted with a
// warning saying why Puddle has no use for it. A `refused` part is a feature
// Puddle does not have yet: it is accepted and ignored while switched off
// (`auth.ldap.enabled: false`), and loading fails while it is switched on.
//
// The reference doc (docs/configuration.md) and the example config
// (packaging/config.example.yaml) are rendered from these tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace puddle::config {

enum class ValueType {
  kString,
  kBool,
  kInt,
  kStringList,
  kStringMap,        // label -> string, such as cloud tags
  kLabelMinutesMap,  // label -> minutes, in document order
  kRange,            // "min-max" or [min, max]
};

enum class KeyClass { kUsed, kIgnored, kRefused };

// Condition that switches a refused part, or a switched used part, on.
enum class PartSwitch {
  kNone,         // ignored parts and Puddle's own keys: never switched
  kEnabledTrue,  // its `enabled` key is true
  kNonEmptyKey,  // its switch key contains a non-empty string
  kAnyValue,     // any of its keys contains a non-empty value
  kKeyEquals,    // its switch key contains `switch_value` (used parts only)
};

// A value after its type was checked. Only the field of the key's type is set.
struct ConfigValue {
  std::string text;                                      // kString
  bool flag = false;                                     // kBool
  int64_t number = 0;                                    // kInt
  std::vector<std::string> items;                        // kStringList
  std::vector<std::pair<std::string, int64_t>> labeled;  // kLabelMinutesMap
  int64_t range_min = 0;                                 // kRange
  int64_t range_max = 0;                                 // kRange
};

// Problem with a value, as shown after "path:line: key: ".
struct ValueProblem {
  std::string text;
  // Index of the list item or map entry at fault; -1 for the whole value.
  int item = -1;
};

// Checks a used key's value and stores it in `config`; returns the problem
// when the value is invalid. Messages about secret keys never contain the value.
using ValueReader = std::optional<ValueProblem> (*)(const ConfigValue& value, Config& config);

struct PartDefinition;

struct KeyDefinition {
  std::string_view key;  // canonical dotted name
  ValueType type = ValueType::kString;
  std::string_view default_value = {};  // YAML text; empty when there is none
  std::string_view meaning = {};
  // Spellings from other versions of the original's docs. The loader adds the
  // rule-based ones (see ExpandedSpellings) when the table is built.
  std::vector<std::string_view> alternatives = {};
  bool secret = false;
  ValueReader read = nullptr;  // used keys only
  // YAML text shown, commented out, in the example config for a used key
  // without a default.
  std::string_view example = {};

  // Filled when the table is built.
  KeyClass key_class = KeyClass::kUsed;
  const PartDefinition* part = nullptr;
  std::vector<std::string> spellings = {};  // every accepted spelling but the key itself
};

struct PartDefinition {
  std::string_view name;  // dotted prefix ("auth.ldap") or a group title ("log files")
  KeyClass key_class = KeyClass::kUsed;
  // Ignored parts: why Puddle has no use for them. Refused parts: what is not
  // built yet and how to run without it. Switched used parts: what Puddle
  // uses instead while the part is switched off.
  std::string_view reason;
  // Refused parts: the missing feature in a few words ("LDAP login").
  std::string_view feature = {};
  PartSwitch part_switch = PartSwitch::kNone;
  // Canonical key for kEnabledTrue, kNonEmptyKey and kKeyEquals.
  std::string_view switch_key = {};
  std::string_view switch_value = {};  // kKeyEquals only
  // Any key under `name` is accepted and ignored, declared or not.
  bool open = false;
  std::vector<KeyDefinition> keys = {};

  // Filled when the table is built: every key lies under `name`.
  bool is_section = false;
};

// Every part, in the order of the reference doc; the first is Puddle's own
// keys, followed by the switched used parts.
const std::vector<PartDefinition>& ConfigParts();

// The key that `spelling` (any accepted spelling) names, or null.
const KeyDefinition* FindKeyBySpelling(std::string_view spelling);

// The key whose canonical name is `key`, or null.
const KeyDefinition* FindKey(std::string_view key);

// True when `path` is a section: a proper prefix of some accepted spelling.
bool IsSection(std::string_view path);

// The open part whose prefix contains `path`, or null.
const PartDefinition* FindOpenPart(std::string_view path);

// Every accepted spelling and every section, for "did you mean" suggestions.
const std::vector<std::string>& KnownPaths();

// Section names that are two spellings of one section, such as
// redis.connections and redis.connection, as (canonical, alternative).
const std::vector<std::pair<std::string, std::string>>& SectionAliases();

// Returns `key` plus `alternatives` plus what the spelling rules derive from
// them: `enable` for `enabled`, `usePublicIp` for `usePublicIP` and back, and
// `redis.connection.` for `redis.connections.`.
std::vector<std::string> ExpandedSpellings(std::string_view key,
                                           const std::vector<std::string_view>& alternatives);

std::string_view KeyClassName(KeyClass key_class);
std::string_view ValueTypeName(ValueType type);

}  // namespace puddle::config
