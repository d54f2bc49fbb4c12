#include "providers/local/cpu_time.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace puddle::local {

std::optional<int64_t> ParseCpuTicks(std::string_view stat_text) {
  // The command name (field 2) may contain spaces and parentheses, so the
  // fields are counted from the last ')'.
  size_t close = stat_text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat_text.substr(close + 1);

  // Fields 3 (state) to 17 (cstime); utime is field 14.
  int64_t total = 0;
  int field = 2;
  size_t pos = 0;
  while (field < 17) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    if (pos >= end) return std::nullopt;
    ++field;
    if (field >= 14) {
      int64_t value = 0;
      auto [ptr, error] = std::from_chars(rest.data() + pos, rest.data() + end, value);
      if (error != std::errc() || ptr != rest.data() + end) return std::nullopt;
      total += value;
    }
    pos = end;
  }
  return total;
}

double SumCpuSeconds(const std::vector<int64_t>& pids) {
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  int64_t ticks = 0;
  for (int64_t pid : pids) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
    std::stringstream text;
    text << file.rdbuf();
    if (auto parsed = ParseCpuTicks(text.str())) ticks += *parsed;
  }
  return static_cast<double>(ticks) / static_cast<double>(ticks_per_second > 0 ? ticks_per_second : 100);
}

}  // namespace puddle::local
