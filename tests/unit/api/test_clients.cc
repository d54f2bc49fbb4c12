#include "test_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <openssl/err.h>

namespace puddle::testing {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMilliseconds(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

std::string ToLower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<std::pair<CurlResult*, const CurlRequest*>*>(user);
  std::string_view chunk(data, size * count);
  if (sink->second->keep_body) sink->first->body.append(chunk);
  if (sink->second->on_data && !sink->second->on_data(chunk)) return 0;  // abort
  return size * count;
}

size_t AppendHeader(char* data, size_t size, size_t count, void* user) {
  auto* result = static_cast<CurlResult*>(user);
  std::string_view line(data, size * count);
  // A new status line (after "100 Continue") starts a new header block.
  if (line.starts_with("HTTP/")) result->headers.clear();
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.remove_suffix(1);
    result->headers.emplace_back(ToLower(std::string(line.substr(0, colon))), std::string(value));
  }
  return size * count;
}

struct UploadState {
  const std::string* body;
  size_t offset = 0;
};

// Hands the body to curl in pieces of at most 64 KiB, so a chunked upload
// has many chunks.
size_t ReadUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* state = static_cast<UploadState*>(user);
  size_t n = std::min({size * count, state->body->size() - state->offset, size_t{64 << 10}});
  std::memcpy(buffer, state->body->data() + state->offset, n);
  state->offset += n;
  return n;
}

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = "/tmp/puddle-api-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string CurlResult::Header(std::string_view name) const {
  std::string value;
  for (const auto& [key, text] : headers) {
    if (key == name) value = text;
  }
  return value;
}

CurlClient::CurlClient(std::string ca_file) : ca_file_(std::move(ca_file)) {
  InitCurlOnce();
  handle_ = curl_easy_init();
}

CurlClient::~CurlClient() { curl_easy_cleanup(handle_); }

CurlResult CurlClient::Get(const std::string& url) {
  CurlRequest request;
  request.url = url;
  return Perform(request);
}

CurlResult CurlClient::Perform(const CurlRequest& request) {
  CurlResult result;
  char error[CURL_ERROR_SIZE] = {0};
  std::pair<CurlResult*, const CurlRequest*> sink{&result, &request};
  UploadState upload{&request.body};
  curl_slist* headers = nullptr;
  for (const std::string& header : request.headers) headers = curl_slist_append(headers, header.c_str());
  curl_slist* resolve = nullptr;
  for (const std::string& entry : request.resolve) resolve = curl_slist_append(resolve, entry.c_str());

  // Options persist on an easy handle; reset the ones a request may change.
  CURL* h = handle_;
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, AppendHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &result);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(h, CURLOPT_REQUEST_TARGET,
                   request.request_target.empty() ? nullptr : request.request_target.c_str());
  curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, nullptr);
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.chunked_upload) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadUpload);
    curl_easy_setopt(h, CURLOPT_READDATA, &upload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(-1));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, nullptr);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET" || !request.body.empty()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  result.code = curl_easy_perform(h);
  if (result.code != CURLE_OK) result.error = error[0] ? error : curl_easy_strerror(result.code);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &result.new_connections);
  curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &result.seconds);

  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_RESOLVE, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);
  curl_slist_free_all(resolve);
  return result;
}

TcpClient::TcpClient(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

TcpClient::~TcpClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool TcpClient::Write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

ReadOutcome TcpClient::ReadUntilClosed(std::chrono::milliseconds timeout) {
  ReadOutcome outcome;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    pollfd descriptor{fd_, POLLIN, 0};
    int ready = ::poll(&descriptor, 1, RemainingMilliseconds(deadline));
    if (ready == 0) return outcome;  // deadline
    char buffer[4096];
    ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      outcome.closed = true;
      return outcome;
    }
    outcome.data.append(buffer, static_cast<size_t>(n));
  }
}

TlsClient::TlsClient(int port, const std::string& ca_file, int max_version) : tcp_(port) {
  if (!tcp_.connected()) return;
  context_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(context_, ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
  if (max_version != 0) {
    // Lets this client offer old protocols that OpenSSL 3 refuses by default.
    SSL_CTX_set_security_level(context_, 0);
    SSL_CTX_set_min_proto_version(context_, 0);
    SSL_CTX_set_max_proto_version(context_, max_version);
  }
  ssl_ = SSL_new(context_);
  SSL_set_fd(ssl_, tcp_.fd());
  SSL_set_tlsext_host_name(ssl_, "localhost");
  SSL_set1_host(ssl_, "localhost");
  connected_ = SSL_connect(ssl_) == 1;
  ERR_clear_error();
}

TlsClient::~TlsClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (context_ != nullptr) SSL_CTX_free(context_);
}

bool TlsClient::Write(std::string_view data) {
  return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
}

ReadOutcome TlsClient::ReadUntilClosed(std::chrono::milliseconds timeout) {
  ReadOutcome outcome;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (SSL_pending(ssl_) == 0) {
      pollfd descriptor{tcp_.fd(), POLLIN, 0};
      if (::poll(&descriptor, 1, RemainingMilliseconds(deadline)) == 0) return outcome;
    }
    char buffer[4096];
    int n = SSL_read(ssl_, buffer, sizeof(buffer));
    if (n > 0) {
      outcome.data.append(buffer, static_cast<size_t>(n));
      continue;
    }
    int error = SSL_get_error(ssl_, n);
    ERR_clear_error();
    if (error == SSL_ERROR_WANT_READ) continue;  // a record arrived in part
    outcome.closed = true;  // close_notify, FIN or reset
    return outcome;
  }
}

std::string TlsClient::ReadUntil(std::string_view marker, std::chrono::milliseconds timeout) {
  std::string data;
  auto deadline = Clock::now() + timeout;
  while (data.find(marker) == std::string::npos) {
    if (SSL_pending(ssl_) == 0) {
      pollfd descriptor{tcp_.fd(), POLLIN, 0};
      if (::poll(&descriptor, 1, RemainingMilliseconds(deadline)) == 0) break;
    }
    char buffer[4096];
    int n = SSL_read(ssl_, buffer, sizeof(buffer));
    if (n <= 0) {
      int error = SSL_get_error(ssl_, n);
      ERR_clear_error();
      if (error == SSL_ERROR_WANT_READ) continue;
      break;
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace puddle::testing
