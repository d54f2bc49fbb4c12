#include "config/reference.h"

#include <string_view>
#include <vector>

#include "config/schema.h"

namespace puddle::config {
namespace {

constexpr std::string_view kIntroduction = R"(# Configuration reference

<!-- Generated from src/config/schema.cc by `puddle_config_reference markdown`.
     The config tests fail when this file and the schema differ. -->

Puddle reads its settings from one YAML file, `config.yaml`. Every key is
optional. A missing file, an empty file, a file of comments only and a file
containing `{}` all mean the defaults below. They run Puddle on one host with
an embedded SQLite store under `dataDir`, an in-process job queue, the `local`
provider and a generated self-signed TLS certificate. `packaging/config.example.yaml` is a commented
example with every key Puddle uses.

## Finding the file

Puddle reads the first of:

1. the file given with `--config`, which must exist;
2. `$PUDDLE_CONFIG_DIR/config.yaml`, or `$PUDDLE_config_dir/config.yaml` (the
   original product's spelling), which must exist when the variable is set;
3. `/etc/puddle/config.yaml`, when it exists.

Without any of them every key keeps its default. Relative paths are relative to
Puddle's working directory.

## Precedence

A command-line flag beats an environment variable, which beats the file, which
beats the default. `PUDDLE_DATA_DIR` sets `dataDir` and `PUDDLE_LISTEN` sets
`listen`.

## How keys are checked

Each key belongs to one of three classes:

- **used**: Puddle checks the value's type and value and applies it.
- **ignored**: a key of the original product for a part Puddle does not have.
  Puddle accepts it whatever its value and warns, saying why it has no use for
  it.
- **refused**: a key of a part of the original product that Puddle does not
  have yet. While the part is switched off (its `enabled` key false or missing;
  for `redis.connections`, no address given) its keys are ignored with a
  warning. While it is switched on, Puddle refuses to start and says how to run
  without it.

The `db.connection` keys are used only while `db.connection.drivername` is
`postgres`; otherwise Puddle runs on the embedded SQLite store and ignores the
other `db.connection` keys with a warning.

Puddle refuses to start when:

- a key is unknown (with "did you mean ...?" when a known key is close);
- a used key's value has the wrong type or an invalid value;
- two spellings of one key are both set, or one key is set twice;
- a refused part is switched on;
- the file is not valid YAML, or holds more than one YAML document.

It reports every problem at once, one per line, as `path:line: key: problem`.
The values of secret keys never appear in a message or in the check output.

`puddle config check` makes no network call. It prints one line per key read,
`<key><TAB><spelling read><TAB><used|ignored|refused>`, then the warnings.

## Spellings

The original product's documents spell some keys more than one way. Puddle
accepts each spelling in the "Also accepted" column, and `puddle config check`
shows which one it read. Beside the spellings given per key, these rules apply
to every key:

- `enable` is accepted for `enabled`;
- `usePublicIp` and `usePublicIP` are accepted for each other;
- `redis.connection` is accepted for `redis.connections`.

Setting two spellings of one key, such as `backend.baseUrl` and
`backend.baseURL`, is an error naming both lines.
)";

// Escapes a table cell's text: pipes would split the cell, and <id> would be
// read as an HTML tag.
std::string EscapeCell(std::string_view text) {
  std::string escaped;
  for (char c : text) {
    if (c == '|') {
      escaped += "\\|";
    } else if (c == '<') {
      escaped += "&lt;";
    } else if (c == '>') {
      escaped += "&gt;";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// Formats `text` as inline code, where only pipes need escaping.
std::string Code(std::string_view text) {
  if (text.empty()) return {};
  std::string code = "`";
  for (char c : text) {
    if (c == '|') code += '\\';
    code += c;
  }
  return code + "`";
}

std::string KeyTable(const std::vector<KeyDefinition>& keys) {
  std::string table =
      "| Key | Also accepted | Type | Default | Secret | Meaning |\n"
      "|---|---|---|---|---|---|\n";
  for (const KeyDefinition& key : keys) {
    std::string spellings;
    for (const std::string& spelling : key.spellings) {
      spellings += (spellings.empty() ? "" : ", ") + Code(spelling);
    }
    table += "| " + Code(key.key) + " | " + spellings + " | " +
             std::string(ValueTypeName(key.type)) + " | " + Code(key.default_value) + " | " +
             (key.secret ? "yes" : "") + " | " + EscapeCell(key.meaning) + " |\n";
  }
  return table;
}

std::string PartTitle(const PartDefinition& part) {
  if (part.open || part.is_section) return "`" + std::string(part.name) + ".*`";
  if (part.keys.size() == 1) return "`" + std::string(part.keys.front().key) + "`";
  return std::string(part.name);
}

std::string SwitchSentence(const PartDefinition& part) {
  switch (part.part_switch) {
    case PartSwitch::kEnabledTrue:
      return "Refused when `" + std::string(part.switch_key) + "` is true: ";
    case PartSwitch::kNonEmptyKey:
      return "Refused when `" + std::string(part.switch_key) + "` is set: ";
    case PartSwitch::kAnyValue: return "Refused when any of its keys has a value: ";
    case PartSwitch::kKeyEquals:
    case PartSwitch::kNone: break;
  }
  return {};
}

std::string UsedWhenSentence(const PartDefinition& part) {
  if (part.part_switch == PartSwitch::kNonEmptyKey) {
    return "Used when `" + std::string(part.switch_key) + "` is set. While it is not, the " +
           "other keys are ignored with a warning, and " + std::string(part.reason) + ".";
  }
  return "Used when `" + std::string(part.switch_key) + "` is `" +
         std::string(part.switch_value) + "`. While it is not, the other keys are ignored " +
         "with a warning, and " + std::string(part.reason) + ".";
}

std::string Capitalized(std::string_view text) {
  std::string result(text);
  if (!result.empty() && result[0] >= 'a' && result[0] <= 'z') result[0] -= 'a' - 'A';
  return result;
}

// Appends `text` as "# " comment lines of at most 80 columns at `indent`.
void AppendComment(std::string& out, const std::string& indent, std::string_view text) {
  const size_t width = 80 - indent.size() - 2;
  std::string line;
  size_t start = 0;
  while (start < text.size()) {
    size_t space = text.find(' ', start);
    if (space == std::string_view::npos) space = text.size();
    std::string_view word = text.substr(start, space - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += indent + "# " + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + std::string(word);
    start = space + 1;
  }
  if (!line.empty()) out += indent + "# " + line + "\n";
}

std::vector<std::string> SplitKey(std::string_view key) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    segments.emplace_back(key.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return segments;
}

// Renders `keys` as nested YAML with each key's meaning as a comment. With a
// `prefix` of "# ", every line is commented out and each key shows its example
// value, else its default.
std::string ExampleKeys(const std::vector<KeyDefinition>& keys, const std::string& prefix) {
  std::string out;
  std::vector<std::string> open_sections;
  for (const KeyDefinition& key : keys) {
    std::vector<std::string> segments = SplitKey(key.key);
    std::vector<std::string> sections(segments.begin(), segments.end() - 1);

    // Close the sections this key is not in, then open the ones it needs.
    size_t shared = 0;
    while (shared < open_sections.size() && shared < sections.size() &&
           open_sections[shared] == sections[shared]) {
      ++shared;
    }
    open_sections.resize(shared);
    out += prefix.empty() ? "\n" : "#\n";
    for (size_t depth = shared; depth < sections.size(); ++depth) {
      out += prefix + std::string(2 * depth, ' ') + sections[depth] + ":\n";
      open_sections.push_back(sections[depth]);
    }

    std::string indent(2 * sections.size(), ' ');
    AppendComment(out, prefix + indent, key.meaning);
    if (!prefix.empty()) {
      std::string_view value = key.example.empty() ? key.default_value : key.example;
      out += prefix + indent + segments.back() + ": " + std::string(value) + "\n";
    } else if (!key.default_value.empty()) {
      out += indent + segments.back() + ": " + std::string(key.default_value) + "\n";
    } else {
      out += indent + "# " + segments.back() + ": " + std::string(key.example) + "\n";
    }
  }
  return out;
}

}  // namespace

std::string RenderReferenceMarkdown() {
  const std::vector<PartDefinition>& parts = ConfigParts();
  std::string out(kIntroduction);

  out += "\n## Keys Puddle uses\n\n";
  out += KeyTable(parts.front().keys);
  for (const PartDefinition& part : parts) {
    if (part.key_class != KeyClass::kUsed || part.part_switch == PartSwitch::kNone) continue;
    out += "\n### " + PartTitle(part) + ": " + std::string(part.feature) + "\n\n";
    out += UsedWhenSentence(part) + "\n\n";
    out += KeyTable(part.keys);
  }

  out +=
      "\n## Refused until built\n\n"
      "Parts of the original product that Puddle does not have yet. Switched off, their "
      "keys are ignored with a warning.\n";
  for (const PartDefinition& part : parts) {
    if (part.key_class != KeyClass::kRefused) continue;
    out += "\n### " + PartTitle(part) + "\n\n";
    out += SwitchSentence(part) + std::string(part.reason) + ".\n\n";
    out += KeyTable(part.keys);
  }

  out +=
      "\n## Accepted and ignored\n\n"
      "Keys of the original product for parts Puddle does not have. Puddle accepts them "
      "whatever their value and warns once per part.\n";
  for (const PartDefinition& part : parts) {
    if (part.key_class != KeyClass::kIgnored) continue;
    out += "\n### " + PartTitle(part) + "\n\n";
    out += Capitalized(part.reason) + ".";
    if (part.open) {
      out += " Any other key under `" + std::string(part.name) + "` is accepted and ignored too.";
    }
    out += "\n\n" + KeyTable(part.keys);
  }
  return out;
}

std::string RenderExampleConfig() {
  std::string out =
      "# Puddle configuration (/etc/puddle/config.yaml).\n"
      "#\n"
      "# Generated from src/config/schema.cc by `puddle_config_reference example`.\n"
      "# Every key is optional, and an empty file means all defaults; the values below\n"
      "# are the defaults. docs/configuration.md lists every key, including the\n"
      "# original product's keys that Puddle ignores or refuses until built.\n"
      "# Check a file with `puddle config check`.\n";

  out += ExampleKeys(ConfigParts().front().keys, "");
  for (const PartDefinition& part : ConfigParts()) {
    if (part.key_class != KeyClass::kUsed || part.part_switch == PartSwitch::kNone) continue;
    out += "\n";
    AppendComment(out, "", UsedWhenSentence(part) + " Uncomment to use " +
                               std::string(part.feature) + ".");
    out += ExampleKeys(part.keys, "# ");
  }
  return out;
}

}  // namespace puddle::config
