#include "common/ids.h"

#include <sodium.h>

namespace puddle {

std::string NewId(size_t length) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string id(length, 'a');
  for (size_t i = 0; i < length; ++i) {
    uint32_t limit = i == 0 ? 26 : 32;
    id[i] = kAlphabet[randombytes_uniform(limit)];
  }
  return id;
}

}  // namespace puddle
