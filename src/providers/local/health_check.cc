#include "providers/local/health_check.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <memory>
#include <mutex>

namespace puddle::local {
namespace {

struct BodyBuffer {
  std::string text;
  size_t max_bytes = 0;
  bool too_large = false;
};

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<BodyBuffer*>(user);
  size_t length = size * count;
  if (body->text.size() + length > body->max_bytes) {
    body->too_large = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  body->text.append(data, length);
  return length;
}

struct ProductAnswer {
  CURLcode result = CURLE_FAILED_INIT;
  long status = 0;
};

// GET `url` with the product's token, keeping at most body->max_bytes of the
// response. The product listens on an address only Puddle should reach; a proxy
// from the environment (http_proxy) must never see the request or the token,
// and a redirect must not carry the token elsewhere.
ProductAnswer GetProduct(const std::string& url, const std::string& token,
                         std::chrono::milliseconds timeout, BodyBuffer* body) {
  static std::once_flag curl_initialized;
  std::call_once(curl_initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  ProductAnswer answer;
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return answer;
  std::string authorization = "Authorization: token " + token;
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      curl_slist_append(nullptr, authorization.c_str()), curl_slist_free_all);

  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, body);

  answer.result = curl_easy_perform(handle);
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

}  // namespace

ProductStatus CheckHttpHealth(const std::string& url, const std::string& token,
                              std::chrono::milliseconds timeout) {
  BodyBuffer body;
  body.max_bytes = 64 << 10;  // Health responses are small, so a larger one is cut short.
  ProductAnswer answer = GetProduct(url, token, timeout, &body);
  if (answer.result == CURLE_COULDNT_CONNECT) return ProductStatus::kStarting;
  if (answer.result != CURLE_OK && !body.too_large) return ProductStatus::kUnhealthy;
  return answer.status == 200 ? ProductStatus::kReady : ProductStatus::kUnhealthy;
}

Result<std::string> GetWithToken(const std::string& url, const std::string& token,
                                 std::chrono::milliseconds timeout, size_t max_bytes) {
  BodyBuffer body;
  body.max_bytes = max_bytes;
  ProductAnswer answer = GetProduct(url, token, timeout, &body);
  if (body.too_large) {
    return MakeError(ErrorCode::kUnavailable, "GET " + url + " failed: the response exceeds " +
                                                  std::to_string(max_bytes) + " bytes");
  }
  if (answer.result != CURLE_OK) {
    return MakeError(ErrorCode::kUnavailable,
                     "GET " + url + " failed: " + curl_easy_strerror(answer.result));
  }
  if (answer.status != 200) {
    return MakeError(ErrorCode::kUnavailable,
                     "GET " + url + " answered HTTP " + std::to_string(answer.status));
  }
  return std::move(body.text);
}

namespace {

// /proc/net/tcp prints each 32-bit word of an address as %08X of its in-memory
// value, so on a little-endian host 127.0.0.2 reads "0200007F".
std::string ProcWords(const unsigned char* bytes, size_t length) {
  std::string out;
  for (size_t i = 0; i < length; i += 4) {
    uint32_t word;
    std::memcpy(&word, bytes + i, 4);
    char text[9];
    std::snprintf(text, sizeof text, "%08X", word);
    out += text;
  }
  return out;
}

struct Listener {
  std::string address;  // hex as in /proc/net/tcp*
  uid_t uid;
};

std::vector<Listener> ListenersOnPort(const std::string& path, int port) {
  std::vector<Listener> listeners;
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);  // header
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits;
    long uid = -1;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid;
    if (state != "0A" || uid < 0) continue;  // 0A is TCP_LISTEN
    size_t colon = local.find(':');
    if (colon == std::string::npos) continue;
    if (std::strtol(local.c_str() + colon + 1, nullptr, 16) != port) continue;
    listeners.push_back({local.substr(0, colon), static_cast<uid_t>(uid)});
  }
  return listeners;
}

// The /proc/net/tcp* forms of the addresses a connection to `address` could
// land on: itself, its IPv4-mapped form and the wildcards. False when
// `address` is not an IP address.
bool MatchingAddresses(const std::string& address, std::vector<std::string>& v4_matches,
                       std::vector<std::string>& v6_matches) {
  unsigned char bytes[16] = {};
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
    v4_matches = {ProcWords(bytes, 4), "00000000"};
    unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(mapped + 12, bytes, 4);
    v6_matches = {ProcWords(mapped, 16), std::string(32, '0')};
  } else if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
    v6_matches = {ProcWords(bytes, 16), std::string(32, '0')};
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool ListenerOwnedBy(const std::string& address, int port, uid_t uid,
                     const std::string& proc_net_dir) {
  std::vector<std::string> v4_matches, v6_matches;
  if (!MatchingAddresses(address, v4_matches, v6_matches)) return false;

  bool found = false;
  auto check = [&](const std::vector<Listener>& listeners,
                   const std::vector<std::string>& matches) {
    for (const auto& listener : listeners) {
      bool relevant = false;
      for (const auto& match : matches) relevant = relevant || listener.address == match;
      if (!relevant) continue;
      if (listener.uid != uid) return false;
      found = true;
    }
    return true;
  };
  if (!check(ListenersOnPort(proc_net_dir + "/tcp", port), v4_matches)) return false;
  if (!check(ListenersOnPort(proc_net_dir + "/tcp6", port), v6_matches)) return false;
  return found;
}

bool HasListener(const std::string& address, int port, const std::string& proc_net_dir) {
  std::vector<std::string> v4_matches, v6_matches;
  if (!MatchingAddresses(address, v4_matches, v6_matches)) return false;
  auto any = [&](const std::vector<Listener>& listeners, const std::vector<std::string>& matches) {
    return std::any_of(listeners.begin(), listeners.end(), [&](const Listener& listener) {
      return std::find(matches.begin(), matches.end(), listener.address) != matches.end();
    });
  };
  return any(ListenersOnPort(proc_net_dir + "/tcp", port), v4_matches) ||
         any(ListenersOnPort(proc_net_dir + "/tcp6", port), v6_matches);
}

}  // namespace puddle::local
