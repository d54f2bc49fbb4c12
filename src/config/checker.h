// Checker: checks one config document key by key and builds the Config.
//
// Internal to the config library; loader.cc finds and reads the file and
// calls it. The public interface is loader.h.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/loader.h"
#include "config/schema.h"

namespace puddle::config {

// Environment variables that override a key, applied after the file.
inline constexpr std::pair<const char*, const char*> kEnvironmentOverrides[] = {
    {"PUDDLE_DATA_DIR", "dataDir"},
    {"PUDDLE_LISTEN", "listen"},
};

// A used key's value that failed its check.
struct KeyProblem {
  std::string key;  // spelling, plus the item at fault ("trustedProxies[1]")
  int line = 0;     // 0 when the value has no line (environment, flags)
  std::string text;
};

// Checks `value` against `key` and stores it in `config` when valid. Messages
// about a secret key never contain its value.
std::optional<KeyProblem> ReadUsedValue(const KeyDefinition& key, std::string_view spelling,
                                        const YAML::Node& value, int line, Config& config);

// One key found in the file.
struct Entry {
  std::string spelling;
  const KeyDefinition* key = nullptr;  // null for an undeclared key of an open part
  const PartDefinition* part = nullptr;
  YAML::Node value;
  int line = 0;
  KeyClass key_class = KeyClass::kUsed;
  bool duplicate = false;  // another spelling of the same key came first

  std::string Canonical() const { return key != nullptr ? std::string(key->key) : spelling; }
};

// Checks one config document and builds the Config, collecting every problem
// so that one run reports all of them.
class Checker {
 public:
  explicit Checker(std::string source_path) : source_path_(std::move(source_path)) {}

  void CheckDocument(std::string_view text);
  void ApplyEnvironment(const std::vector<std::pair<std::string, std::string>>& variables);
  void CheckAcrossKeys();
  ConfigInspection Finish();

 private:
  void Walk(const YAML::Node& mapping, const std::string& prefix);
  void CheckDuplicateSpellings();
  void CheckSectionAliases();
  void ResolveParts();
  void ResolveRefusedPart(const PartDefinition& part, const std::vector<Entry*>& entries);
  void ResolveSwitchedUsedPart(const PartDefinition& part, const std::vector<Entry*>& entries);
  void ReadUsedKeys();

  void AddProblem(int line, std::string_view key, std::string_view text);
  void AddWarning(int line, std::string_view key, std::string_view text);
  std::string Location(int line) const;
  const Entry* FindEntry(std::string_view canonical) const;
  int LineOfKey(std::string_view canonical) const;

  std::string source_path_;
  Config config_;
  std::vector<Entry> entries_;
  std::map<std::string, int, std::less<>> section_lines_;
  std::vector<ConfigKeyReport> environment_reports_;
  std::vector<std::string> problems_;
  std::string first_problem_key_;
};

}  // namespace puddle::config
