#include "providers/local/health_check.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace puddle::local {
namespace {

size_t DiscardBody(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

ProductStatus CheckHttpHealth(const std::string& url, const std::string& token,
                              std::chrono::milliseconds timeout) {
  static std::once_flag curl_initialized;
  std::call_once(curl_initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return ProductStatus::kUnhealthy;
  std::string authorization = "Authorization: token " + token;
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      curl_slist_append(nullptr, authorization.c_str()), curl_slist_free_all);

  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  // The product listens on a loopback address; a proxy from the environment
  // (http_proxy) must never see the request or the token.
  curl_easy_setopt(handle, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, DiscardBody);

  CURLcode result = curl_easy_perform(handle);
  if (result == CURLE_COULDNT_CONNECT) return ProductStatus::kStarting;
  if (result != CURLE_OK) return ProductStatus::kUnhealthy;
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  return status == 200 ? ProductStatus::kReady : ProductStatus::kUnhealthy;
}

}  // namespace puddle::local
