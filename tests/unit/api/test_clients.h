// Clients for testing HttpServer over real loopback sockets: libcurl for
// well-behaved HTTPS, OpenSSL and plain TCP for clients that misbehave.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <openssl/ssl.h>

namespace puddle::testing {

// A fresh folder under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

struct CurlRequest {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  // Sends the body with chunked transfer encoding, its size unknown upfront.
  bool chunked_upload = false;
  // Receives body bytes as they arrive; returning false aborts the transfer.
  std::function<bool(std::string_view)> on_data;
  // Whether CurlResult::body keeps the body; false leaves it to on_data.
  bool keep_body = true;
  // "host:port:address" entries for CURLOPT_RESOLVE.
  std::vector<std::string> resolve;
  // CURLOPT_REQUEST_TARGET, to send a target curl would otherwise fix.
  std::string request_target;
};

struct CurlResult {
  CURLcode code = CURLE_OK;
  std::string error;  // curl's message when code != CURLE_OK
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  long new_connections = 0;
  double seconds = 0;

  // Returns the value of the last header named `name` (lower case), or "".
  std::string Header(std::string_view name) const;
};

// One libcurl easy handle, so consecutive requests may reuse a connection.
// Trusts only `ca_file` and never uses a proxy.
class CurlClient {
 public:
  explicit CurlClient(std::string ca_file);
  ~CurlClient();
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  CurlResult Perform(const CurlRequest& request);
  CurlResult Get(const std::string& url);

 private:
  std::string ca_file_;
  CURL* handle_;
};

// Outcome of reading from a connection until the server closes it.
struct ReadOutcome {
  std::string data;
  bool closed = false;  // false when the deadline passed first
};

// A plain TCP connection to 127.0.0.1.
class TcpClient {
 public:
  explicit TcpClient(int port);
  ~TcpClient();
  bool connected() const { return fd_ >= 0; }
  bool Write(std::string_view data);
  ReadOutcome ReadUntilClosed(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// A TLS connection made with OpenSSL, for requests libcurl will not send.
class TlsClient {
 public:
  // Connects to 127.0.0.1:`port`, verifying the server against `ca_file`.
  // `max_version` (such as TLS1_1_VERSION) caps the protocol when non-zero.
  TlsClient(int port, const std::string& ca_file, int max_version = 0);
  ~TlsClient();
  // Whether the TCP connection and the TLS handshake succeeded.
  bool connected() const { return connected_; }
  bool Write(std::string_view data);
  // Reads until the server closes the connection (TLS close_notify or TCP
  // FIN) or `timeout` passes.
  ReadOutcome ReadUntilClosed(std::chrono::milliseconds timeout);
  // Reads until the data received contains `marker` or `timeout` passes.
  std::string ReadUntil(std::string_view marker, std::chrono::milliseconds timeout);

 private:
  TcpClient tcp_;
  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
};

// Polls `condition` every 10 ms until it is true or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace puddle::testing
