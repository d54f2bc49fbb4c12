#include "cli/curl/curl_transport.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <filesystem>
#include <mutex>
#include <utility>

namespace puddle::cli {
namespace {

// A reply larger than this is an error rather than a memory exhaustion.
constexpr size_t kMaxReplyBytes = 32 * 1024 * 1024;
constexpr long kConnectTimeoutSeconds = 15;
constexpr char kUserAgent[] = "puddle-cli/0.1";

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

}  // namespace

struct CurlTransport::State {
  CURL* handle = nullptr;
  std::string base_url;
  TlsPolicy tls;
  char error_buffer[CURL_ERROR_SIZE] = {};

  // Per call.
  std::string body;
  bool body_too_large = false;
  std::string retry_after;
  std::string seen_fingerprint;
  bool pin_mismatch = false;
  std::string peer_check_failure;

  ~State() {
    if (handle != nullptr) curl_easy_cleanup(handle);
  }
};

namespace {

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<CurlTransport::State*>(user);
  size_t bytes = size * count;
  if (state->body.size() + bytes > kMaxReplyBytes) {
    state->body_too_large = true;
    return 0;
  }
  state->body.append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<CurlTransport::State*>(user);
  std::string_view line(data, size * count);
  // A proxy's CONNECT reply or a 100 Continue comes before the final reply.
  if (StartsWithNoCase(line, "HTTP/")) state->retry_after.clear();
  if (StartsWithNoCase(line, "retry-after:")) {
    state->retry_after = Trim(line.substr(std::string_view("retry-after:").size()));
  }
  return size * count;
}

// Runs after the connection (and its TLS handshake) is ready and before the
// request is written: records the server certificate's fingerprint and, for a
// pinned server, aborts the transfer when it differs from the pin.
int CheckPeerBeforeRequest(void* user, char*, char*, int, int) {
  auto* state = static_cast<CurlTransport::State*>(user);
  const curl_tlssessioninfo* session = nullptr;
  if (curl_easy_getinfo(state->handle, CURLINFO_TLS_SSL_PTR, &session) != CURLE_OK ||
      session == nullptr || session->backend != CURLSSLBACKEND_OPENSSL ||
      session->internals == nullptr) {
    state->peer_check_failure = "the TLS session is not available to check the certificate";
    return CURL_PREREQFUNC_ABORT;
  }

  X509* certificate = SSL_get0_peer_certificate(static_cast<SSL*>(session->internals));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (certificate == nullptr || X509_digest(certificate, EVP_sha256(), digest, &length) != 1) {
    state->peer_check_failure = "the server sent no certificate";
    return CURL_PREREQFUNC_ABORT;
  }
  state->seen_fingerprint = FormatFingerprint(digest, length);

  if (state->tls.mode == TlsMode::kPinned &&
      state->seen_fingerprint != state->tls.pinned_fingerprint) {
    state->pin_mismatch = true;
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

Status ApplyTlsPolicy(CURL* handle, const TlsPolicy& tls) {
  switch (tls.mode) {
    case TlsMode::kSystemCa:
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 1L);
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 2L);
      return Ok();
    case TlsMode::kCaFile: {
      std::error_code error;
      if (!std::filesystem::is_regular_file(tls.ca_file, error)) {
        return MakeError(ErrorCode::kValidationFailed,
                         "CA certificate file " + tls.ca_file + " does not exist");
      }
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 1L);
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 2L);
      curl_easy_setopt(handle, CURLOPT_CAINFO, tls.ca_file.c_str());
      // Trust that file only, not the system's CA directory as well.
      curl_easy_setopt(handle, CURLOPT_CAPATH, nullptr);
      return Ok();
    }
    case TlsMode::kPinned:
      if (tls.pinned_fingerprint.empty()) {
        return MakeError(ErrorCode::kValidationFailed, "no certificate fingerprint to pin");
      }
      [[fallthrough]];
    case TlsMode::kInsecure:
      // The chain and host name are not checked; CheckPeerBeforeRequest
      // compares the certificate itself with the pin.
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 0L);
      return Ok();
  }
  return Ok();
}

}  // namespace

CurlTransport::CurlTransport(std::unique_ptr<State> state) : state_(std::move(state)) {}

CurlTransport::~CurlTransport() = default;

Result<std::unique_ptr<CurlTransport>> CurlTransport::Create(std::string base_url, TlsPolicy tls,
                                                             std::chrono::seconds request_timeout) {
  if (!StartsWithNoCase(base_url, "https://")) {
    return MakeError(ErrorCode::kValidationFailed,
                     "server URL " + base_url + " must start with https://");
  }
  InitCurlOnce();

  auto state = std::make_unique<State>();
  state->handle = curl_easy_init();
  if (state->handle == nullptr) return InternalError("libcurl could not create a handle");
  state->base_url = std::move(base_url);
  state->tls = std::move(tls);

  CURL* handle = state->handle;
  if (auto applied = ApplyTlsPolicy(handle, state->tls); !applied) {
    return tl::unexpected(applied.error());
  }
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT, static_cast<long>(request_timeout.count()));
  curl_easy_setopt(handle, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, state->error_buffer);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, state.get());
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, state.get());
  curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, CheckPeerBeforeRequest);
  curl_easy_setopt(handle, CURLOPT_PREREQDATA, state.get());
  return std::unique_ptr<CurlTransport>(new CurlTransport(std::move(state)));
}

Result<HttpReply> CurlTransport::Send(const HttpCall& call) {
  State& state = *state_;
  CURL* handle = state.handle;
  state.body.clear();
  state.body_too_large = false;
  state.retry_after.clear();
  state.seen_fingerprint.clear();
  state.pin_mismatch = false;
  state.peer_check_failure.clear();
  state.error_buffer[0] = '\0';

  const std::string url = state.base_url + call.target;
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());

  // Each call sets the method from scratch, because the handle is reused.
  curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, nullptr);
  if (call.method == "POST") {
    const std::string& body = call.json_body ? *call.json_body : std::string();
    curl_easy_setopt(handle, CURLOPT_POST, 1L);
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(handle, CURLOPT_COPYPOSTFIELDS, body.c_str());
  } else {
    curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
    if (call.method != "GET") curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  // A POST without a body sends no Content-Type (libcurl would add a form type).
  headers = curl_slist_append(headers,
                              call.json_body ? "Content-Type: application/json" : "Content-Type:");
  headers = curl_slist_append(headers, "Expect:");
  for (const auto& [name, value] : call.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);

  CURLcode code = curl_easy_perform(handle);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);

  // A certificate that fails its check is kForbidden, so that callers which
  // retry an unreachable server (kUnavailable) do not retry it.
  if (state.pin_mismatch) {
    return MakeError(
        ErrorCode::kForbidden,
        "the certificate of " + state.base_url + " has SHA-256 fingerprint " +
            state.seen_fingerprint + ", not the " + state.tls.pinned_fingerprint +
            " pinned at login, so nothing was sent. If the server's certificate was replaced, "
            "check the new fingerprint on the server and run `puddle login` again, or pass "
            "--ca-cert FILE");
  }
  if (!state.peer_check_failure.empty()) {
    return MakeError(ErrorCode::kForbidden,
                     "connect to " + state.base_url + ": " + state.peer_check_failure);
  }
  if (state.body_too_large) {
    return MakeError(ErrorCode::kUnavailable, call.method + " " + call.target +
                                                  ": reply is larger than " +
                                                  std::to_string(kMaxReplyBytes) + " bytes");
  }
  if (code != CURLE_OK) {
    std::string detail =
        state.error_buffer[0] != '\0' ? state.error_buffer : curl_easy_strerror(code);
    std::string message = call.method + " " + url + ": " + detail;
    if (code == CURLE_PEER_FAILED_VERIFICATION) {
      return MakeError(ErrorCode::kForbidden,
                       message +
                           ". Pass --ca-cert FILE with the CA that signed the server's "
                           "certificate (Puddle's generated one is <dataDir>/tls/cert.pem), or run "
                           "`puddle login` to pin the certificate");
    }
    return MakeError(ErrorCode::kUnavailable, message);
  }

  HttpReply reply;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &reply.status);
  reply.body = std::move(state.body);
  reply.retry_after = std::move(state.retry_after);
  reply.peer_fingerprint = state.seen_fingerprint;
  return reply;
}

}  // namespace puddle::cli
