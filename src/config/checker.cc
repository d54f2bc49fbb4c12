#include "config/checker.h"

#include <algorithm>

#include "config/readers.h"
#include "config/suggest.h"
#include "config/value_parser.h"

namespace puddle::config {
namespace {

int LineOf(const YAML::Node& node) {
  int line = node.Mark().line;
  return line < 0 ? 0 : line + 1;
}

std::string DescribeNode(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: return "\"" + node.Scalar() + "\"";
    default: return "nothing";
  }
}

// Replaces a secret's text wherever it appears in `text`.
std::string Redact(std::string text, const YAML::Node& value) {
  if (!value.IsScalar() || value.Scalar().empty()) return text;
  const std::string& secret = value.Scalar();
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "<redacted>");
  }
  return text;
}

}  // namespace

std::optional<KeyProblem> ReadUsedValue(const KeyDefinition& key, std::string_view spelling,
                                        const YAML::Node& value, int line, Config& config) {
  ParsedValue parsed = ParseValue(value, key.type, key.secret);
  std::optional<ValueProblem> problem = parsed.problem;
  if (!problem) problem = key.read(parsed.value, config);
  if (!problem) return std::nullopt;

  KeyProblem result{std::string(spelling), line, problem->text};
  size_t item = static_cast<size_t>(problem->item);
  if (problem->item >= 0 && item < parsed.item_names.size()) {
    result.key += parsed.item_names[item];
    if (parsed.item_lines[item] > 0) result.line = parsed.item_lines[item];
  }
  if (key.secret) result.text = Redact(result.text, value);
  return result;
}
std::string Checker::Location(int line) const {
  std::string source = source_path_.empty() ? "(no config file)" : source_path_;
  if (line <= 0) return source;
  return source + ":" + std::to_string(line);
}

void Checker::AddProblem(int line, std::string_view key, std::string_view text) {
  if (problems_.empty()) first_problem_key_ = std::string(key);
  problems_.push_back(Location(line) + ": " + std::string(key) + ": " + std::string(text));
}

void Checker::AddWarning(int line, std::string_view key, std::string_view text) {
  config_.warnings.push_back(Location(line) + ": " + std::string(key) + ": " + std::string(text));
}

const Entry* Checker::FindEntry(std::string_view canonical) const {
  for (const Entry& entry : entries_) {
    if (!entry.duplicate && entry.Canonical() == canonical) return &entry;
  }
  return nullptr;
}

int Checker::LineOfKey(std::string_view canonical) const {
  const Entry* entry = FindEntry(canonical);
  return entry != nullptr ? entry->line : 0;
}

void Checker::CheckDocument(std::string_view text) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& error) {
    int line = error.mark.line < 0 ? 0 : error.mark.line + 1;
    problems_.push_back(Location(line) + ": invalid YAML: " + error.msg + " (column " +
                        std::to_string(error.mark.column + 1) + ")");
    return;
  }
  if (documents.size() > 1) {
    problems_.push_back(Location(LineOf(documents[1])) + ": the file holds " +
                        std::to_string(documents.size()) +
                        " YAML documents; Puddle reads one, so remove the others");
    return;
  }
  // No document (empty or only comments) and a null document both mean defaults.
  if (documents.empty() || documents[0].IsNull()) return;
  if (!documents[0].IsMap()) {
    problems_.push_back(Location(LineOf(documents[0])) +
                        ": expected a mapping of keys at the top level, got " +
                        DescribeNode(documents[0]));
    return;
  }

  Walk(documents[0], "");
  CheckDuplicateSpellings();
  CheckSectionAliases();
  ResolveParts();
  ReadUsedKeys();
}

void Checker::Walk(const YAML::Node& mapping, const std::string& prefix) {
  std::map<std::string, int> lines_in_mapping;
  for (const auto& item : mapping) {
    const YAML::Node& key_node = item.first;
    const YAML::Node& value = item.second;
    int line = LineOf(key_node);
    if (!key_node.IsScalar()) {
      AddProblem(line, prefix.empty() ? "(top level)" : prefix, "keys must be plain strings");
      continue;
    }
    const std::string& name = key_node.Scalar();
    std::string path = prefix.empty() ? name : prefix + "." + name;

    auto [seen, inserted] = lines_in_mapping.emplace(name, line);
    if (!inserted) {
      AddProblem(line, path,
                 "set twice in the same mapping, at lines " + std::to_string(seen->second) +
                     " and " + std::to_string(line) + "; keep one");
      continue;
    }
    if (const KeyDefinition* key = FindKeyBySpelling(path)) {
      entries_.push_back({path, key, key->part, value, line, key->key_class});
      continue;
    }
    if (IsSection(path)) {
      section_lines_.emplace(path, line);
      if (value.IsNull()) continue;
      if (!value.IsMap()) {
        AddProblem(line, path, "expected a mapping of keys, got " + DescribeNode(value));
        continue;
      }
      Walk(value, path);
      continue;
    }
    if (const PartDefinition* part = FindOpenPart(path)) {
      entries_.push_back({path, nullptr, part, value, line, part->key_class});
      continue;
    }
    std::string text = "unknown key";
    if (auto suggestion = SuggestKnownPath(path)) text += "; did you mean " + *suggestion + "?";
    AddProblem(line, path, text);
  }
}

// Two spellings of one key would leave it unclear which value wins.
void Checker::CheckDuplicateSpellings() {
  std::map<std::string, const Entry*> first_by_key;
  for (Entry& entry : entries_) {
    auto [first, inserted] = first_by_key.emplace(entry.Canonical(), &entry);
    if (inserted) continue;
    entry.duplicate = true;
    const Entry& earlier = *first->second;
    if (earlier.spelling == entry.spelling) {
      AddProblem(entry.line, entry.spelling,
                 "set twice, at lines " + std::to_string(earlier.line) + " and " +
                     std::to_string(entry.line) + "; keep one");
    } else {
      AddProblem(entry.line, entry.spelling,
                 "also set as " + earlier.spelling + " at line " + std::to_string(earlier.line) +
                     "; both are spellings of " + entry.Canonical() + ", so keep one");
    }
  }
}

void Checker::CheckSectionAliases() {
  for (const auto& [canonical, alternative] : SectionAliases()) {
    auto first = section_lines_.find(canonical);
    auto second = section_lines_.find(alternative);
    if (first == section_lines_.end() || second == section_lines_.end()) continue;
    AddProblem(std::max(first->second, second->second), alternative,
               "also written as " + canonical + " at line " + std::to_string(first->second) +
                   ", and " + alternative + " at line " + std::to_string(second->second) +
                   " is another spelling of it; merge them into one " + canonical + " section");
  }
}

void Checker::ResolveParts() {
  // Parts in the order their first key appears, so warnings follow the file.
  std::vector<const PartDefinition*> order;
  std::map<const PartDefinition*, std::vector<Entry*>> entries_by_part;
  for (Entry& entry : entries_) {
    bool switched = entry.part->part_switch != PartSwitch::kNone;
    if (entry.part->key_class == KeyClass::kUsed && !switched) continue;
    auto& group = entries_by_part[entry.part];
    if (group.empty()) order.push_back(entry.part);
    group.push_back(&entry);
  }

  for (const PartDefinition* part : order) {
    const std::vector<Entry*>& group = entries_by_part[part];
    if (part->key_class == KeyClass::kRefused) {
      ResolveRefusedPart(*part, group);
      continue;
    }
    if (part->key_class == KeyClass::kUsed) {
      ResolveSwitchedUsedPart(*part, group);
      continue;
    }
    std::string label;
    if (part->is_section || part->open) {
      label = std::string(part->name) + ".*";
    } else {
      for (const Entry* entry : group) label += (label.empty() ? "" : ", ") + entry->spelling;
    }
    AddWarning(group.front()->line, label, "ignored: " + std::string(part->reason));
  }
}

void Checker::ResolveRefusedPart(const PartDefinition& part, const std::vector<Entry*>& group) {
  const Entry* switch_entry = nullptr;
  for (const Entry* entry : group) {
    if (!entry->duplicate && entry->key != nullptr && entry->key->key == part.switch_key) {
      switch_entry = entry;
    }
  }

  bool switched_on = false;
  std::string off_because;
  switch (part.part_switch) {
    case PartSwitch::kEnabledTrue: {
      off_because = std::string(part.switch_key) + " is not true";
      if (switch_entry == nullptr || switch_entry->value.IsNull()) break;
      std::optional<bool> enabled =
          switch_entry->value.IsScalar() ? ParseBool(switch_entry->value.Scalar()) : std::nullopt;
      if (!enabled) {
        AddProblem(switch_entry->line, switch_entry->spelling,
                   "expected true or false, got " + DescribeNode(switch_entry->value));
        return;
      }
      switched_on = *enabled;
      break;
    }
    case PartSwitch::kNonEmptyKey:
      off_because = std::string(part.switch_key) + " is not set";
      switched_on = switch_entry != nullptr && HasValue(switch_entry->value);
      break;
    case PartSwitch::kAnyValue:
      off_because = "none of its keys has a value";
      switched_on = std::any_of(group.begin(), group.end(),
                                [](const Entry* entry) { return HasValue(entry->value); });
      break;
    case PartSwitch::kKeyEquals:
    case PartSwitch::kNone: break;
  }

  std::string label = std::string(part.name) + ".*";
  if (!switched_on) {
    for (Entry* entry : group) entry->key_class = KeyClass::kIgnored;
    AddWarning(group.front()->line, label,
               "ignored because " + off_because + ", and Puddle does not have " +
                   std::string(part.feature) + " yet");
    return;
  }

  if (part.part_switch == PartSwitch::kAnyValue) {
    auto section = section_lines_.find(part.name);
    int line = section != section_lines_.end() ? section->second : group.front()->line;
    AddProblem(line, part.name, part.reason);
  } else {
    AddProblem(switch_entry->line, switch_entry->spelling, part.reason);
  }
}

// The switch key of a switched used part is always read (its reader rejects
// values other than the known ones). The other keys are read only while the
// switch key contains the switch value.
void Checker::ResolveSwitchedUsedPart(const PartDefinition& part,
                                      const std::vector<Entry*>& group) {
  const Entry* switch_entry = nullptr;
  for (const Entry* entry : group) {
    if (!entry->duplicate && entry->key != nullptr && entry->key->key == part.switch_key) {
      switch_entry = entry;
    }
  }
  bool switched_on = false;
  std::string off_because;
  if (part.part_switch == PartSwitch::kNonEmptyKey) {
    switched_on = switch_entry != nullptr && HasValue(switch_entry->value);
    off_because = std::string(part.switch_key) + " is not set";
  } else {
    switched_on = switch_entry != nullptr && switch_entry->value.IsScalar() &&
                  switch_entry->value.Scalar() == part.switch_value;
    off_because = std::string(part.switch_key) + " is not " + std::string(part.switch_value);
  }
  if (switched_on) return;

  bool others = false;
  // An unset switch key of its own (an empty Redis address) is ignored too; a
  // driver name that picks another store stays used.
  bool keep_switch = part.part_switch != PartSwitch::kNonEmptyKey;
  for (Entry* entry : group) {
    bool is_switch =
        entry == switch_entry || (entry->key != nullptr && entry->key->key == part.switch_key);
    if (is_switch && keep_switch) continue;
    entry->key_class = KeyClass::kIgnored;
    others = others || !is_switch;
  }
  if (!others) return;
  AddWarning(group.front()->line, std::string(part.name) + ".*",
             "ignored because " + off_because + ", so " + std::string(part.reason));
}

void Checker::ReadUsedKeys() {
  for (const Entry& entry : entries_) {
    if (entry.key_class != KeyClass::kUsed || entry.duplicate) continue;
    // An empty value (`listen:`) leaves the default in place.
    if (entry.value.IsNull()) continue;
    auto problem = ReadUsedValue(*entry.key, entry.spelling, entry.value, entry.line, config_);
    if (problem) AddProblem(problem->line, problem->key, problem->text);
  }
}

void Checker::ApplyEnvironment(const std::vector<std::pair<std::string, std::string>>& variables) {
  for (const auto& [variable, value] : variables) {
    std::string key_name;
    for (const auto& [name, key] : kEnvironmentOverrides) {
      if (variable == name) key_name = key;
    }
    const KeyDefinition* key = FindKey(key_name);
    if (key == nullptr) continue;
    auto problem = ReadUsedValue(*key, key->key, YAML::Node(value), 0, config_);
    if (problem) {
      if (problems_.empty()) first_problem_key_ = std::string(key->key);
      problems_.push_back("environment variable " + variable + ": " + problem->key + ": " +
                          problem->text);
      continue;
    }
    environment_reports_.push_back({std::string(key->key), "$" + variable, "used"});
  }
}

void Checker::CheckAcrossKeys() {
  // PostgreSQL: libpq would fall back to a Unix socket and the operating
  // system user, which is never what a shared store means.
  if (config_.database.IsPostgres()) {
    int line = LineOfKey("db.connection.drivername");
    if (config_.database.host.empty()) {
      AddProblem(line, "db.connection.host",
                 "missing; set the PostgreSQL server's host name or IP address, or set "
                 "db.connection.drivername to sqlite for the embedded store");
    }
    if (config_.database.user.empty()) {
      AddProblem(line, "db.connection.user", "missing; set the PostgreSQL user Puddle connects as");
    }
  }

  // TLS: a certificate without its key (or the reverse) cannot serve HTTPS.
  // Presence in the file counts, so that a missing certificate file is one problem, not two.
  const Entry* cert = FindEntry("tls.certFile");
  const Entry* key = FindEntry("tls.keyFile");
  bool has_cert = cert != nullptr && HasValue(cert->value);
  bool has_key = key != nullptr && HasValue(key->value);
  if (has_cert != has_key) {
    const char* present = has_cert ? "tls.certFile" : "tls.keyFile";
    const char* missing = has_cert ? "tls.keyFile" : "tls.certFile";
    AddProblem(LineOfKey(present), present,
               std::string(missing) +
                   " is not set; set both tls keys, or neither to use a "
                   "generated self-signed certificate");
  }

  // Providers: the fake one replaces every real one.
  if (config_.fake_provider_enabled) {
    int line = LineOfKey("providers.fake.enabled");
    if (config_.local.enabled.value_or(false)) {
      AddProblem(line, "providers.fake.enabled",
                 "cannot be combined with providers.local.enabled: true (line " +
                     std::to_string(LineOfKey("providers.local.enabled")) +
                     "); the fake provider must be the only one enabled");
    }
    AddWarning(line, "providers.fake.enabled",
               "the fake provider is on: systems are simulated and run nothing; use it only "
               "for tests and benchmarks");
  } else if (config_.local.enabled == false) {
    AddWarning(LineOfKey("providers.local.enabled"), "providers.local.enabled",
               "no provider is enabled, so systems cannot be created");
  }

  // Products must not listen where Puddle is served: browsers would send
  // Puddle's cookies to them.
  if (ListenHost(config_.listen) == config_.local.listen_address) {
    if (FindEntry("providers.local.listenAddress") != nullptr) {
      AddProblem(LineOfKey("providers.local.listenAddress"), "providers.local.listenAddress",
                 "equals the host Puddle listens on (listen: " + config_.listen +
                     "); products need an address Puddle is not served on");
    } else {
      AddProblem(LineOfKey("listen"), "listen",
                 "its host is providers.local.listenAddress (" + config_.local.listen_address +
                     "), where local products listen; serve Puddle on another address, or move "
                     "the products with providers.local.listenAddress");
    }
  }

  // System origins: https://<id>.<systemsDomain> must not share cookies with Puddle.
  std::string base_host = BaseUrlHost(config_.base_url);
  const std::string& domain = config_.systems_domain;
  // Without backend.baseUrl, Puddle is served as localhost and as its listen host.
  std::vector<std::string> puddle_hosts = {base_host};
  if (base_host.empty()) puddle_hosts = {"localhost", ListenHost(config_.listen)};
  for (const std::string& host : puddle_hosts) {
    if (host.empty() || !(host == domain || host.ends_with("." + domain))) continue;
    int line = LineOfKey("proxy.systemsDomain");
    AddProblem(line > 0 ? line : LineOfKey("backend.baseUrl"), "proxy.systemsDomain",
               "\"" + domain + "\" is Puddle's host " + host +
                   " or a parent of it, so system pages would share Puddle's cookies; use a "
                   "domain outside Puddle's host, such as systems-puddle.example.com");
    break;
  }
  bool reached_from_other_hosts = (!base_host.empty() && !IsLoopbackHost(base_host)) ||
                                  !IsLoopbackHost(ListenHost(config_.listen));
  if (reached_from_other_hosts && IsLoopbackHost(domain)) {
    AddWarning(LineOfKey("proxy.systemsDomain"), "proxy.systemsDomain",
               "\"" + domain +
                   "\" resolves only on this host, but Puddle is reached from other "
                   "hosts: their browsers cannot open systems (url stays null); set it to a domain "
                   "whose every subdomain reaches Puddle");
  }
}

ConfigInspection Checker::Finish() {
  for (const Entry& entry : entries_) {
    config_.keys_read.push_back(
        {entry.Canonical(), entry.spelling, std::string(KeyClassName(entry.key_class))});
  }
  config_.keys_read.insert(config_.keys_read.end(), environment_reports_.begin(),
                           environment_reports_.end());
  config_.source_path = source_path_;

  ConfigInspection inspection;
  inspection.config = std::move(config_);
  if (!problems_.empty()) {
    std::string message;
    for (const std::string& problem : problems_) {
      message += (message.empty() ? "" : "\n") + problem;
    }
    Error error;
    error.code = ErrorCode::kValidationFailed;
    error.message = std::move(message);
    error.field = first_problem_key_;
    inspection.error = std::move(error);
  }
  return inspection;
}
}  // namespace puddle::config
