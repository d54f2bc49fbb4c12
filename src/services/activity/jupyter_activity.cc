#include "services/activity/jupyter_activity.h"

#include <boost/json.hpp>

#include <array>

namespace puddle::jupyter {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// True when `path` is `prefix` or lies under it.
bool UnderPrefix(std::string_view path, std::string_view prefix) {
  if (!StartsWith(path, prefix)) return false;
  if (path.size() == prefix.size() || prefix.back() == '/') return true;
  return path[prefix.size()] == '/';
}

// Paths Jupyter's pages fetch on their own: polls, heartbeats, the
// WebSocket upgrades themselves, configuration and static assets.
constexpr std::array<std::string_view, 14> kBackgroundPrefixes = {
    "api/contents", "api/sessions",   "api/kernels",        "api/terminals",
    "api/status",   "api/kernelspecs", "api/config",        "api/metrics",
    "api/spec.yaml", "terminals/websocket", "static/",      "custom/",
    "nbextensions/", "kernelspecs/",
};

// A minimal scanner over JSON text: enough to find the header's msg_type
// without building a document, and to give up on anything malformed.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool Peek(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }

  // Reads a string and returns its raw contents (escapes left as written).
  std::optional<std::string_view> String() {
    if (!Consume('"')) return std::nullopt;
    size_t start = pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\\') {
        pos_ += 2;
        continue;
      }
      if (c == '"') {
        std::string_view value = text_.substr(start, pos_ - start);
        ++pos_;
        return value;
      }
      ++pos_;
    }
    return std::nullopt;
  }

  // Skips one value of any type.
  bool SkipValue() {
    SkipSpace();
    if (pos_ >= text_.size()) return false;
    char c = text_[pos_];
    if (c == '"') return String().has_value();
    if (c == '{' || c == '[') {
      int depth = 0;
      while (pos_ < text_.size()) {
        char d = text_[pos_];
        if (d == '"') {
          if (!String()) return false;
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') {
          --depth;
          if (depth == 0) {
            ++pos_;
            return true;
          }
        }
        ++pos_;
      }
      return false;
    }
    // A number or a literal runs to the next delimiter.
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '}' && text_[pos_] != ']' &&
           text_[pos_] != ' ' && text_[pos_] != '\n' && text_[pos_] != '\r' && text_[pos_] != '\t') {
      ++pos_;
    }
    return pos_ > start;
  }

  // Scans the members of the object that starts here until `key`; leaves
  // the position at its value. Returns false when the key is absent.
  bool FindMember(std::string_view key) {
    if (!Consume('{')) return false;
    if (Consume('}')) return false;
    while (true) {
      auto name = String();
      if (!name || !Consume(':')) return false;
      if (*name == key) return true;
      if (!SkipValue()) return false;
      if (!Consume(',')) return false;
    }
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

bool IsUserRequest(std::string_view system_id, std::string_view method, std::string_view path) {
  // Strip the programs' path prefix "/systems/<id>" that prefix-mode products see.
  std::string prefix = "/systems/" + std::string(system_id);
  if (UnderPrefix(path, prefix)) path.remove_prefix(prefix.size());
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);

  // Writes are always a person's doing (autosave included: Jupyter saves
  // only a notebook someone changed).
  if (method != "GET" && method != "HEAD" && method != "OPTIONS") return true;
  if (method == "OPTIONS") return false;
  if (path == "favicon.ico") return false;
  for (std::string_view background : kBackgroundPrefixes) {
    if (UnderPrefix(path, background)) return false;
  }
  return true;
}

bool IsUserMessage(std::string_view message) {
  Scanner scanner(message);
  if (scanner.Peek('[')) {
    // terminado: ["stdin", "ls\r"] is typing; ["set_size", ...] is not.
    scanner.Consume('[');
    auto kind = scanner.String();
    return kind && *kind == "stdin";
  }
  if (!scanner.FindMember("header")) return false;
  if (!scanner.FindMember("msg_type")) return false;
  auto type = scanner.String();
  return type && (*type == "execute_request" || *type == "input_reply" || *type == "comm_msg");
}

Result<KernelsReport> ParseKernels(std::string_view body) {
  boost::system::error_code error;
  boost::json::value parsed = boost::json::parse(body, error);
  if (error || !parsed.is_array()) {
    return MakeError(ErrorCode::kInternal, "api/kernels did not return a JSON array of kernels");
  }
  KernelsReport report;
  for (const auto& item : parsed.as_array()) {
    if (!item.is_object()) continue;
    const auto& kernel = item.as_object();
    ++report.kernels;
    if (const auto* state = kernel.if_contains("execution_state");
        state && state->is_string() && state->as_string() == "busy") {
      report.busy = true;
    }
    if (const auto* last = kernel.if_contains("last_activity"); last && last->is_string()) {
      auto time = ParseTime(std::string_view(last->as_string()));
      if (time && (!report.last_activity || *time > *report.last_activity)) {
        report.last_activity = time;
      }
    }
  }
  return report;
}

}  // namespace puddle::jupyter
