#include "cli/http_transport.h"

#include <cctype>

namespace puddle::cli {

std::string FormatFingerprint(const unsigned char* digest, size_t length) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text;
  for (size_t i = 0; i < length; ++i) {
    if (i > 0) text += ':';
    text += kHex[digest[i] >> 4];
    text += kHex[digest[i] & 0x0f];
  }
  return text;
}

std::optional<std::string> NormalizeFingerprint(std::string_view text) {
  for (std::string_view prefix : {"sha256 fingerprint=", "sha256:"}) {
    if (text.size() >= prefix.size()) {
      bool matches = true;
      for (size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) matches = false;
      }
      if (matches) text.remove_prefix(prefix.size());
    }
  }

  std::string hex;
  for (char c : text) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    hex += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (hex.size() != 64) return std::nullopt;

  std::string formatted;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) formatted += ':';
    formatted += hex.substr(i, 2);
  }
  return formatted;
}

}  // namespace puddle::cli
