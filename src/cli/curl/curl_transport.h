// CurlTransport: HttpTransport over one libcurl easy handle.
//
// Requests go only to the base URL given at construction, over HTTPS, without
// following redirects. The standard proxy variables (https_proxy, no_proxy,
// ...) are honoured as libcurl reads them. Through a proxy, the TLS session is
// still end to end with the server, so the certificate check below applies to
// the server and not to the proxy.
//
// In TlsMode::kPinned the server's leaf certificate is compared with the pin
// after the TLS handshake and before any byte of the request is sent (libcurl's
// CURLOPT_PREREQFUNCTION, reading the OpenSSL session). Every reply records the
// fingerprint it came from, so `puddle login` can show and store it.
//
// Not thread-safe: one transport serves one thread. The connection is kept
// open between calls.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cli/http_transport.h"
#include "common/result.h"

namespace puddle::cli {

class CurlTransport final : public HttpTransport {
 public:
  // `base_url` is "https://host[:port][/prefix]" without a trailing slash.
  // `request_timeout` bounds each call, connection included.
  static Result<std::unique_ptr<CurlTransport>> Create(
      std::string base_url, TlsPolicy tls,
      std::chrono::seconds request_timeout = std::chrono::seconds(120));
  ~CurlTransport() override;

  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  // Fails with kForbidden when the certificate check fails and kUnavailable
  // when no reply arrived for another reason (refused, timed out, too large).
  Result<HttpReply> Send(const HttpCall& call) override;

  struct State;

 private:
  explicit CurlTransport(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace puddle::cli
