// HttpServer's head handler and forwarding to a product, over real loopback
// sockets: libcurl or OpenSSL clients on one side, a raw-socket fake product
// on 127.0.0.1 (or ::1) on the other.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "api/http_server.h"
#include "api/tls_certificate.h"
#include "common/crypto.h"
#include "test_clients.h"

namespace puddle {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::CurlClient;
using testing::CurlRequest;
using testing::CurlResult;
using testing::TempDir;
using testing::TlsClient;
using testing::WaitFor;

// Time a fake product waits for the proxy before giving up on a read.
constexpr auto kProductReadTimeout = 10s;

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The server's side of one connection the fake product accepted.
class ProductConnection {
 public:
  explicit ProductConnection(int fd) : fd_(fd) {}

  // Reads through the blank line that ends a head and returns the head, or
  // what arrived before the proxy closed or kProductReadTimeout passed.
  std::string ReadHead() {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::exchange(buffer_, "");
    }
    std::string head = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
    return head;
  }

  // Returns the next `size` bytes, or fewer when the proxy closed first.
  std::string ReadExactly(size_t size) {
    while (buffer_.size() < size) {
      if (!Fill()) break;
    }
    size = std::min(size, buffer_.size());
    std::string data = buffer_.substr(0, size);
    buffer_.erase(0, size);
    return data;
  }

  // Decodes a chunked body; returns nullopt on a framing error or a close.
  std::optional<std::string> ReadChunkedBody() {
    std::string body;
    for (;;) {
      size_t line_end;
      while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
        if (!Fill()) return std::nullopt;
      }
      size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
      buffer_.erase(0, line_end + 2);
      std::string data = ReadExactly(size + 2);
      if (data.size() != size + 2 || !data.ends_with("\r\n")) return std::nullopt;
      if (size == 0) return body;
      body += data.substr(0, size);
    }
  }

  // Returns whether the proxy closed the connection within kProductReadTimeout.
  bool WaitForClose() {
    while (Fill()) buffer_.clear();
    return closed_;
  }

  bool Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Makes the close after `serve` returns send a TCP reset instead of a FIN.
  void ResetOnClose() {
    linger option{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  }

 private:
  bool Fill() {
    pollfd descriptor{fd_, POLLIN, 0};
    int timeout = static_cast<int>(std::chrono::milliseconds(kProductReadTimeout).count());
    if (::poll(&descriptor, 1, timeout) <= 0) return false;
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
  bool closed_ = false;
};

// A product listening on loopback that serves each connection with `serve`
// on a thread of its own, then closes it. The destructor shuts down the
// connections still open and joins every thread.
class FakeProduct {
 public:
  using Serve = std::function<void(ProductConnection&)>;

  explicit FakeProduct(Serve serve, bool ipv6 = false) : serve_(std::move(serve)) {
    listen_fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (ipv6) {
      auto* address = reinterpret_cast<sockaddr_in6*>(&storage);
      address->sin6_family = AF_INET6;
      address->sin6_addr = in6addr_loopback;
      length = sizeof(sockaddr_in6);
    } else {
      auto* address = reinterpret_cast<sockaddr_in*>(&storage);
      address->sin_family = AF_INET;
      address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof(sockaddr_in);
    }
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return;
    }
    int port = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                          : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    address_ = (ipv6 ? "[::1]:" : "127.0.0.1:") + std::to_string(port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeProduct() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& thread : threads_) thread.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  // "127.0.0.1:port" or "[::1]:port"; empty when the socket could not bind.
  const std::string& address() const { return address_; }
  int accepted() const { return accepted_.load(); }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      pollfd descriptor{listen_fd_, POLLIN, 0};
      if (::poll(&descriptor, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] {
        ProductConnection connection(fd);
        serve_(connection);
        // Closed under the lock, so the destructor never touches a
        // descriptor number that was closed and reused.
        std::lock_guard lock(mutex_);
        std::erase(fds_, fd);
        ::close(fd);
      });
    }
  }

  Serve serve_;
  int listen_fd_ = -1;
  std::string address_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<int> fds_;              // open connections; guarded by mutex_
  std::vector<std::thread> threads_;  // guarded by mutex_ while the acceptor runs
  std::thread acceptor_;
};

// Returns a loopback port with nothing listening on it.
int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), length);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  int port = ntohs(address.sin_port);
  ::close(fd);
  return port;
}

// Deterministic bytes that differ at every offset of a 50 MB body.
std::string PatternBytes(size_t offset, size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    uint64_t x = offset + i;
    data[i] = static_cast<char>((x * 2654435761u) >> 13 ^ (x >> 8));
  }
  return data;
}

class StreamingSha256 {
 public:
  StreamingSha256() : context_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(context_, EVP_sha256(), nullptr); }
  ~StreamingSha256() { EVP_MD_CTX_free(context_); }
  void Update(std::string_view data) { EVP_DigestUpdate(context_, data.data(), data.size()); }
  std::string Hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(context_, digest, &size);
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < size; ++i) {
      hex += kDigits[digest[i] >> 4];
      hex += kDigits[digest[i] & 0xf];
    }
    return hex;
  }

 private:
  EVP_MD_CTX* context_;
};

// Builds a client-to-server WebSocket frame (RFC 6455 section 5.2).
std::string MaskedFrame(bool fin, uint8_t opcode, std::string_view payload,
                        std::string_view mask = "\x37\xfa\x21\x3d") {
  std::string frame;
  frame += static_cast<char>((fin ? 0x80 : 0x00) | opcode);
  if (payload.size() < 126) {
    frame += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() <= 0xffff) {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xff);
  } else {
    frame += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame += static_cast<char>((static_cast<uint64_t>(payload.size()) >> shift) & 0xff);
    }
  }
  frame += mask;
  for (size_t i = 0; i < payload.size(); ++i) frame += static_cast<char>(payload[i] ^ mask[i % 4]);
  return frame;
}

// Header lines of a raw head, names lower-cased, without the start line.
std::vector<std::pair<std::string, std::string>> HeaderLines(const std::string& head) {
  std::vector<std::pair<std::string, std::string>> headers;
  size_t start = head.find("\r\n") + 2;
  while (start < head.size()) {
    size_t end = head.find("\r\n", start);
    if (end == std::string::npos || end == start) break;
    std::string line = head.substr(start, end - start);
    size_t colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    headers.emplace_back(Lower(line.substr(0, colon)), value);
    start = end + 2;
  }
  return headers;
}

size_t ContentLengthOf(const std::string& head) {
  for (const auto& [name, value] : HeaderLines(head)) {
    if (name == "content-length") return std::stoul(value);
  }
  return 0;
}

boost::json::object ParseObject(const std::string& text) {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  if (error || !value.is_object()) return {};
  return value.as_object();
}

std::string ErrorField(const std::string& body, const char* field) {
  boost::json::object object = ParseObject(body);
  const boost::json::value* error = object.if_contains("error");
  if (error == nullptr || !error->is_object()) return "<no error object>";
  const boost::json::value* value = error->as_object().if_contains(field);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : "<none>";
}

// Returns the process's resident and peak resident memory in KiB.
std::pair<long, long> MemoryKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  long rss = 0;
  long peak = 0;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) rss = std::stol(line.substr(6));
    if (line.starts_with("VmHWM:")) peak = std::stol(line.substr(6));
  }
  return {rss, peak};
}

class HttpProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitCrypto());
    dir_ = new TempDir();
    Status made = EnsureSelfSignedCertificate(dir_->File("cert.pem"), dir_->File("key.pem"),
                                              {"localhost"}, {"127.0.0.1", "::1"});
    ASSERT_TRUE(made) << made.error().message;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string CertFile() { return dir_->File("cert.pem"); }

  // Options whose head handler calls decide_ and whose handler echoes the
  // request body, counting calls.
  HttpServerOptions Options() {
    HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.cert_file = CertFile();
    options.key_file = dir_->File("key.pem");
    options.handler = [this](http::Request& request) {
      ++handler_calls_;
      http::Response response;
      response.headers.emplace_back("content-type", "text/plain");
      response.body = request.method + " " + request.path + " " + request.body;
      return response;
    };
    options.head_handler = [this](const http::Request& request) { return decide_(request); };
    return options;
  }

  int StartServer(HttpServerOptions options) {
    server_ = std::make_unique<HttpServer>(std::move(options));
    auto port = server_->Start();
    EXPECT_TRUE(port) << port.error().message;
    port_ = port ? *port : 0;
    return port_;
  }

  std::string Url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  // Forwards every request to `address` with the client's own headers.
  static std::function<http::HeadDecision(const http::Request&)> ForwardTo(std::string address) {
    return [address](const http::Request& request) {
      http::HeadDecision decision;
      decision.proxy.emplace();
      decision.proxy->address = address;
      decision.proxy->target = request.target;
      decision.proxy->request_headers = request.headers;
      return decision;
    };
  }

  static TempDir* dir_;
  std::function<http::HeadDecision(const http::Request&)> decide_;
  std::atomic<int> handler_calls_{0};
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TempDir* HttpProxyTest::dir_ = nullptr;

TEST_F(HttpProxyTest, HeadHandlerAnswersWithoutHandler) {
  std::mutex mutex;
  std::vector<http::Request> seen;
  decide_ = [&](const http::Request& request) {
    std::lock_guard lock(mutex);
    seen.push_back(request);
    http::HeadDecision decision;
    decision.response = http::JsonResponse(403, R"({"denied":true})");
    decision.response->SetHeader("x-decided", "head");
    return decision;
  };
  StartServer(Options());
  CurlClient curl(CertFile());

  CurlResult got = curl.Get(Url("/denied?x=1"));
  CurlRequest post;
  post.method = "POST";
  post.url = Url("/denied");
  post.body = "abc";
  CurlResult posted = curl.Perform(post);

  ASSERT_EQ(got.code, CURLE_OK) << got.error;
  EXPECT_EQ(got.status, 403);
  EXPECT_EQ(got.body, R"({"denied":true})");
  EXPECT_EQ(got.Header("x-decided"), "head");
  ASSERT_EQ(posted.code, CURLE_OK) << posted.error;
  EXPECT_EQ(posted.status, 403);
  // The POST body was never read, so the connection must not be reused.
  EXPECT_EQ(posted.Header("connection"), "close");
  EXPECT_EQ(handler_calls_.load(), 0);
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].path, "/denied");
  ASSERT_EQ(seen[0].query.size(), 1u);
  EXPECT_EQ(seen[0].query[0].second, "1");
  EXPECT_EQ(seen[1].method, "POST");
  EXPECT_EQ(seen[1].body, "");
  EXPECT_EQ(seen[1].Header("content-length"), "3");
  EXPECT_EQ(seen[1].peer_address, "127.0.0.1");
  EXPECT_FALSE(seen[1].request_id.empty());
}

TEST_F(HttpProxyTest, HeadHandlerResponseMayStream) {
  decide_ = [](const http::Request&) {
    auto calls = std::make_shared<int>(0);
    http::HeadDecision decision;
    decision.response.emplace();
    decision.response->stream = [calls]() -> std::optional<std::string> {
      if (*calls == 2) return std::nullopt;
      return std::string(++*calls == 1 ? "first," : "second");
    };
    return decision;
  };
  StartServer(Options());
  CurlClient curl(CertFile());

  CurlResult first = curl.Get(Url("/events"));
  CurlResult second = curl.Get(Url("/events"));

  ASSERT_EQ(first.code, CURLE_OK) << first.error;
  EXPECT_EQ(first.body, "first,second");
  EXPECT_EQ(first.Header("transfer-encoding"), "chunked");
  ASSERT_EQ(second.code, CURLE_OK) << second.error;
  EXPECT_EQ(second.new_connections, 0);
}

TEST_F(HttpProxyTest, HeadHandlerDeclinesAndHandlerGetsBody) {
  decide_ = [](const http::Request&) { return http::HeadDecision{}; };
  HttpServerOptions options = Options();
  options.max_body_bytes = 300 << 10;
  StartServer(options);
  CurlClient curl(CertFile());

  CurlRequest sized;
  sized.method = "POST";
  sized.url = Url("/form");
  sized.body = "name=box";
  CurlResult sized_result = curl.Perform(sized);
  CurlRequest chunked;
  chunked.method = "PUT";
  chunked.url = Url("/upload");
  chunked.body = std::string(200 << 10, 'c');
  chunked.chunked_upload = true;
  CurlResult chunked_result = curl.Perform(chunked);
  CurlRequest oversized = sized;
  oversized.body = std::string((300 << 10) + 1, 'o');
  CurlResult oversized_result = curl.Perform(oversized);

  ASSERT_EQ(sized_result.code, CURLE_OK) << sized_result.error;
  EXPECT_EQ(sized_result.body, "POST /form name=box");
  ASSERT_EQ(chunked_result.code, CURLE_OK) << chunked_result.error;
  EXPECT_EQ(chunked_result.body, "PUT /upload " + chunked.body);
  ASSERT_EQ(oversized_result.code, CURLE_OK) << oversized_result.error;
  EXPECT_EQ(oversized_result.status, 413);
  EXPECT_EQ(ErrorField(oversized_result.body, "code"), "payload_too_large");
  EXPECT_EQ(handler_calls_.load(), 2);
}

TEST_F(HttpProxyTest, HeadHandlerExceptionGets500) {
  decide_ = [](const http::Request&) -> http::HeadDecision {
    throw std::runtime_error("policy store unreachable");
  };
  StartServer(Options());

  CurlResult result = CurlClient(CertFile()).Get(Url("/"));

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 500);
  EXPECT_EQ(ErrorField(result.body, "code"), "internal");
}

TEST_F(HttpProxyTest, ForwardsGetWithExactHeaderSet) {
  std::mutex mutex;
  std::string product_head;
  FakeProduct product([&](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    {
      std::lock_guard lock(mutex);
      product_head = head;
    }
    connection.Write(
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        "Set-Cookie: product=1\r\n"
        "X-Remove-Me: 1\r\n"
        "Connection: keep-alive, X-Hop\r\n"
        "X-Hop: 1\r\n"
        "Keep-Alive: timeout=5\r\n"
        "X-Product: jupyter\r\n"
        "Content-Length: 5\r\n"
        "\r\n"
        "hello");
  });
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision;
    decision.proxy.emplace();
    decision.proxy->address = product.address();
    decision.proxy->target = request.target;
    decision.proxy->request_headers = {
        {"host", "product.internal"},     {"x-forwarded-for", request.peer_address},
        {"x-custom", std::string(request.Header("x-custom"))},
        {"connection", "keep-alive, X-Drop"}, {"x-drop", "1"},
        {"keep-alive", "300"},            {"te", "trailers"},
        {"proxy-authorization", "Basic eA=="}, {"proxy-connection", "keep-alive"},
        {"trailer", "x-sum"},             {"upgrade", "h2c"},
        {"transfer-encoding", "chunked"}};
    decision.proxy->remove_response_headers = {"set-cookie", "x-remove-me"};
    decision.proxy->add_response_headers = {{"x-added", "yes"}};
    return decision;
  };
  StartServer(Options());
  CurlRequest request;
  request.url = Url("/p/a%20b?x=1&y=two");
  request.headers = {"X-Custom: value"};

  CurlResult result = CurlClient(CertFile()).Perform(request);

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "hello");
  EXPECT_EQ(result.Header("content-type"), "text/plain");
  EXPECT_EQ(result.Header("content-length"), "5");
  EXPECT_EQ(result.Header("x-product"), "jupyter");
  EXPECT_EQ(result.Header("x-added"), "yes");
  EXPECT_EQ(result.Header("set-cookie"), "");
  EXPECT_EQ(result.Header("x-remove-me"), "");
  EXPECT_EQ(result.Header("x-hop"), "");
  EXPECT_EQ(result.Header("keep-alive"), "");
  std::lock_guard lock(mutex);
  EXPECT_EQ(product_head,
            "GET /p/a%20b?x=1&y=two HTTP/1.1\r\n"
            "host: product.internal\r\n"
            "x-forwarded-for: 127.0.0.1\r\n"
            "x-custom: value\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST_F(HttpProxyTest, ForwardsPostWithContentLength) {
  std::mutex mutex;
  std::string product_head;
  FakeProduct product([&](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    std::string body = connection.ReadExactly(ContentLengthOf(head));
    {
      std::lock_guard lock(mutex);
      product_head = head;
    }
    std::string digest = Sha256Hex(body);
    connection.Write("HTTP/1.1 201 Created\r\nContent-Length: " + std::to_string(digest.size()) +
                     "\r\n\r\n" + digest);
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  CurlRequest request;
  request.method = "POST";
  request.url = Url("/api/contents");
  request.body = PatternBytes(0, 300 << 10);
  request.headers = {"Content-Type: application/octet-stream"};

  CurlResult result = CurlClient(CertFile()).Perform(request);

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 201);
  EXPECT_EQ(result.body, Sha256Hex(request.body));
  std::lock_guard lock(mutex);
  EXPECT_TRUE(product_head.starts_with("POST /api/contents HTTP/1.1\r\n")) << product_head;
  int lengths = 0;
  for (const auto& [name, value] : HeaderLines(product_head)) {
    if (name == "content-length") {
      ++lengths;
      EXPECT_EQ(value, std::to_string(300 << 10));
    }
    EXPECT_NE(name, "expect") << "the proxy answers Expect itself";
    EXPECT_NE(name, "transfer-encoding");
  }
  EXPECT_EQ(lengths, 1) << product_head;
}

TEST_F(HttpProxyTest, ForwardsChunkedUpload) {
  std::mutex mutex;
  std::string product_head;
  FakeProduct product([&](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    std::optional<std::string> body = connection.ReadChunkedBody();
    {
      std::lock_guard lock(mutex);
      product_head = head;
    }
    std::string digest = body ? Sha256Hex(*body) : "bad chunked body";
    connection.Write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(digest.size()) +
                     "\r\n\r\n" + digest);
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  CurlRequest request;
  request.method = "PUT";
  request.url = Url("/api/contents/big.bin");
  request.body = PatternBytes(7, 1 << 20);
  request.chunked_upload = true;

  CurlResult result = CurlClient(CertFile()).Perform(request);

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, Sha256Hex(request.body));
  std::lock_guard lock(mutex);
  bool chunked = false;
  for (const auto& [name, value] : HeaderLines(product_head)) {
    if (name == "transfer-encoding") chunked = value == "chunked";
    EXPECT_NE(name, "content-length");
    EXPECT_NE(name, "expect");
  }
  EXPECT_TRUE(chunked) << product_head;
}

TEST_F(HttpProxyTest, StreamsLargeDownload) {
  constexpr size_t kTotal = 50 << 20;
  constexpr size_t kFirst = 1 << 20;
  constexpr size_t kBlock = 64 << 10;
  std::mutex mutex;
  std::condition_variable released_changed;
  bool released = false;
  std::string product_digest;
  FakeProduct product([&](ProductConnection& connection) {
    connection.ReadHead();
    StreamingSha256 digest;
    std::string first = PatternBytes(0, kFirst);
    digest.Update(first);
    connection.Write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: " + std::to_string(kTotal) + "\r\n\r\n" + first);
    // Hold back the rest until the client has bytes: only streaming gets
    // them there.
    {
      std::unique_lock lock(mutex);
      if (!released_changed.wait_for(lock, 20s, [&] { return released; })) return;
    }
    for (size_t offset = kFirst; offset < kTotal; offset += kBlock) {
      std::string block = PatternBytes(offset, kBlock);
      digest.Update(block);
      if (!connection.Write(block)) return;
    }
    std::lock_guard lock(mutex);
    product_digest = digest.Hex();
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  StreamingSha256 client_digest;
  size_t received = 0;
  CurlRequest request;
  request.url = Url("/files/big.bin");
  request.keep_body = false;
  request.on_data = [&](std::string_view data) {
    client_digest.Update(data);
    received += data.size();
    std::lock_guard lock(mutex);
    if (!released) {
      released = true;
      released_changed.notify_all();
    }
    return true;
  };
  // Resets the peak resident size, so VmHWM below covers this download only.
  std::ofstream("/proc/self/clear_refs") << "5";
  long rss_before = MemoryKib().first;

  CurlResult result = CurlClient(CertFile()).Perform(request);

  long peak_growth_kib = MemoryKib().second - rss_before;
  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.Header("content-length"), std::to_string(kTotal));
  EXPECT_EQ(received, kTotal);
  std::lock_guard lock(mutex);
  EXPECT_TRUE(released);
  EXPECT_EQ(client_digest.Hex(), product_digest);
  // The body passed through in pieces: buffering it would add 50 MB.
  // AddressSanitizer keeps freed memory in quarantine, so it grows anyway.
#ifndef __SANITIZE_ADDRESS__
  EXPECT_LT(peak_growth_kib, 20 << 10) << "peak resident memory grew by " << peak_growth_kib
                                       << " KiB during a 50 MiB download";
#else
  (void)peak_growth_kib;
#endif
}

TEST_F(HttpProxyTest, RelaysChunkedAndCloseDelimitedBodies) {
  const std::string body = PatternBytes(3, (2 << 20) + 12345);
  FakeProduct product([&](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    if (head.starts_with("GET /chunked ")) {
      std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      size_t sizes[] = {1, 10, 1000, 70000, 4096};
      size_t offset = 0;
      for (size_t i = 0; offset < body.size(); ++i) {
        size_t size = std::min(sizes[i % 5], body.size() - offset);
        char hex[20];
        std::snprintf(hex, sizeof(hex), "%zx", size);
        wire += std::string(hex) + "\r\n" + body.substr(offset, size) + "\r\n";
        offset += size;
      }
      wire += "0\r\nX-Trailer: dropped\r\n\r\n";
      connection.Write(wire);
    } else {
      // No length and no chunking: the body ends when the connection does.
      connection.Write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body);
    }
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  CurlClient curl(CertFile());

  CurlResult chunked = curl.Get(Url("/chunked"));
  CurlResult delimited = curl.Get(Url("/close-delimited"));
  CurlResult again = curl.Get(Url("/chunked"));

  ASSERT_EQ(chunked.code, CURLE_OK) << chunked.error;
  EXPECT_EQ(chunked.body.size(), body.size());
  EXPECT_EQ(Sha256Hex(chunked.body), Sha256Hex(body));
  EXPECT_EQ(chunked.Header("transfer-encoding"), "chunked");
  ASSERT_EQ(delimited.code, CURLE_OK) << delimited.error;
  EXPECT_EQ(Sha256Hex(delimited.body), Sha256Hex(body));
  EXPECT_EQ(delimited.Header("transfer-encoding"), "chunked");
  ASSERT_EQ(again.code, CURLE_OK) << again.error;
  EXPECT_EQ(Sha256Hex(again.body), Sha256Hex(body));
  EXPECT_EQ(delimited.new_connections, 0);
  EXPECT_EQ(again.new_connections, 0);
  EXPECT_EQ(product.accepted(), 3);
}

TEST_F(HttpProxyTest, HeadAndBodylessStatusesKeepConnection) {
  FakeProduct product([&](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    if (head.starts_with("HEAD ")) {
      connection.Write("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"v1\"\r\n\r\n");
    } else if (head.starts_with("GET /no-content ")) {
      connection.Write("HTTP/1.1 204 No Content\r\nX-Status: none\r\n\r\n");
    } else {
      connection.Write("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
    }
    // Keeps the connection open: the proxy must not wait for a body.
    connection.WaitForClose();
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  CurlClient curl(CertFile());
  CurlRequest head_request;
  head_request.method = "HEAD";
  head_request.url = Url("/files/a.txt");

  CurlResult head = curl.Perform(head_request);
  CurlResult no_content = curl.Get(Url("/no-content"));
  CurlResult not_modified = curl.Get(Url("/not-modified"));

  ASSERT_EQ(head.code, CURLE_OK) << head.error;
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-length"), "1234");
  EXPECT_EQ(head.Header("etag"), "\"v1\"");
  ASSERT_EQ(no_content.code, CURLE_OK) << no_content.error;
  EXPECT_EQ(no_content.status, 204);
  EXPECT_EQ(no_content.Header("x-status"), "none");
  EXPECT_EQ(no_content.new_connections, 0);
  ASSERT_EQ(not_modified.code, CURLE_OK) << not_modified.error;
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(not_modified.new_connections, 0);
  EXPECT_LT(not_modified.seconds, 5.0);
}

TEST_F(HttpProxyTest, KeepAliveReusesClientConnection) {
  FakeProduct product([](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    std::string path = head.substr(4, head.find(' ', 4) - 4);
    connection.Write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(path.size()) +
                     "\r\n\r\n" + path);
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  CurlClient curl(CertFile());

  for (int i = 0; i < 3; ++i) {
    std::string path = "/page/" + std::to_string(i);
    CurlResult result = curl.Get(Url(path));
    ASSERT_EQ(result.code, CURLE_OK) << result.error;
    EXPECT_EQ(result.body, path);
    EXPECT_EQ(result.new_connections, i == 0 ? 1 : 0) << "request " << i;
  }
  // One fresh product connection per request.
  EXPECT_EQ(product.accepted(), 3);
}

TEST_F(HttpProxyTest, Http10ClientGetsCloseDelimitedBody) {
  FakeProduct product([](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());

  ASSERT_TRUE(client.Write("GET /old HTTP/1.0\r\nHost: localhost\r\n\r\n"));
  testing::ReadOutcome outcome = client.ReadUntilClosed(10s);

  EXPECT_TRUE(outcome.closed);
  EXPECT_TRUE(outcome.data.starts_with("HTTP/1.0 200 OK\r\n")) << outcome.data;
  EXPECT_EQ(outcome.data.find("Transfer-Encoding"), std::string::npos) << outcome.data;
  EXPECT_TRUE(outcome.data.ends_with("\r\n\r\nhello world")) << outcome.data;
}

TEST_F(HttpProxyTest, ServesConcurrentProxiedRequests) {
  FakeProduct product([](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    std::string body = connection.ReadExactly(ContentLengthOf(head));
    std::string digest = Sha256Hex(body);
    connection.Write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(digest.size()) +
                     "\r\n\r\n" + digest);
  });
  decide_ = ForwardTo(product.address());
  HttpServerOptions options = Options();
  options.io_threads = 2;
  StartServer(options);

  std::atomic<int> correct{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      CurlClient curl(CertFile());
      for (int i = 0; i < 5; ++i) {
        CurlRequest request;
        request.method = "POST";
        request.url = Url("/work");
        request.body = PatternBytes(static_cast<size_t>(c * 1000 + i), 50000);
        CurlResult result = curl.Perform(request);
        if (result.code == CURLE_OK && result.body == Sha256Hex(request.body)) ++correct;
      }
    });
  }
  for (std::thread& client : clients) client.join();

  EXPECT_EQ(correct.load(), 40);
  EXPECT_EQ(product.accepted(), 40);
}

TEST_F(HttpProxyTest, RejectsBodyOverProxyLimit) {
  FakeProduct product([](ProductConnection& connection) {
    connection.ReadHead();
    connection.WaitForClose();
  });
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision = ForwardTo(product.address())(request);
    decision.proxy->max_body_bytes = 1000;
    return decision;
  };
  StartServer(Options());
  CurlRequest sized;
  sized.method = "POST";
  sized.url = Url("/upload");
  sized.body = std::string(5000, 's');
  CurlRequest chunked = sized;
  chunked.chunked_upload = true;

  CurlResult sized_result = CurlClient(CertFile()).Perform(sized);
  int accepted_after_sized = product.accepted();
  CurlResult chunked_result = CurlClient(CertFile()).Perform(chunked);

  ASSERT_EQ(sized_result.code, CURLE_OK) << sized_result.error;
  EXPECT_EQ(sized_result.status, 413);
  EXPECT_EQ(ErrorField(sized_result.body, "code"), "payload_too_large");
  EXPECT_EQ(accepted_after_sized, 0) << "a declared oversized body must not reach the product";
  ASSERT_EQ(chunked_result.code, CURLE_OK) << chunked_result.error;
  EXPECT_EQ(chunked_result.status, 413);
  EXPECT_EQ(ErrorField(chunked_result.body, "code"), "payload_too_large");
}

TEST_F(HttpProxyTest, Answers502WhenNothingListens) {
  int port = UnusedPort();
  std::string address = "127.0.0.1:" + std::to_string(port);
  decide_ = [&](const http::Request& request) { return ForwardTo(address)(request); };
  StartServer(Options());
  CurlClient curl(CertFile());

  CurlResult first = curl.Get(Url("/lab"));
  address = "[::1]:" + std::to_string(port);
  CurlResult ipv6 = curl.Get(Url("/lab"));

  ASSERT_EQ(first.code, CURLE_OK) << first.error;
  EXPECT_EQ(first.status, 502);
  EXPECT_EQ(first.Header("content-type"), "application/json");
  EXPECT_EQ(ErrorField(first.body, "code"), "unavailable");
  EXPECT_NE(ErrorField(first.body, "message").find("the system's product did not answer"),
            std::string::npos)
      << first.body;
  EXPECT_FALSE(ErrorField(first.body, "requestId").empty());
  ASSERT_EQ(ipv6.code, CURLE_OK) << ipv6.error;
  EXPECT_EQ(ipv6.status, 502);
  EXPECT_EQ(ipv6.new_connections, 0) << "a 502 for a bodiless request keeps the connection";
}

TEST_F(HttpProxyTest, Answers502WhenProductResets) {
  FakeProduct product([](ProductConnection& connection) {
    connection.ReadHead();
    connection.ResetOnClose();
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());

  CurlResult result = CurlClient(CertFile()).Get(Url("/"));

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 502);
  EXPECT_EQ(ErrorField(result.body, "code"), "unavailable");
}

TEST_F(HttpProxyTest, Answers502WhenProductClosesEarly) {
  FakeProduct product([](ProductConnection& connection) { connection.ReadHead(); });
  decide_ = ForwardTo(product.address());
  StartServer(Options());

  CurlResult result = CurlClient(CertFile()).Get(Url("/"));

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 502);
  EXPECT_EQ(ErrorField(result.body, "code"), "unavailable");
}

TEST_F(HttpProxyTest, ProductMayOutlastRequestTimeout) {
  FakeProduct product([](ProductConnection& connection) {
    connection.ReadHead();
    std::this_thread::sleep_for(1500ms);  // the slow product under test
    connection.Write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
  });
  decide_ = ForwardTo(product.address());
  HttpServerOptions options = Options();
  options.request_timeout = 500ms;
  StartServer(options);

  CurlResult result = CurlClient(CertFile()).Get(Url("/compute"));

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "slow");
}

TEST_F(HttpProxyTest, StalledBodyIsCutAfterIdleTimeout) {
  FakeProduct product([](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    connection.WaitForClose();
  });
  decide_ = ForwardTo(product.address());
  HttpServerOptions options = Options();
  options.proxy_idle_timeout = 300ms;
  StartServer(options);

  CurlResult result = CurlClient(CertFile()).Get(Url("/stalls"));

  EXPECT_EQ(result.code, CURLE_PARTIAL_FILE) << result.error;
  EXPECT_EQ(result.body, "partial");
  EXPECT_LT(result.seconds, 5.0);
}

TEST_F(HttpProxyTest, Answers502ForInvalidProductResponse) {
  FakeProduct product([](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    if (head.starts_with("GET /garbage ")) {
      connection.Write("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    } else {
      connection.Write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n");
    }
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  CurlClient curl(CertFile());

  CurlResult garbage = curl.Get(Url("/garbage"));
  CurlResult switched = curl.Get(Url("/switch"));

  ASSERT_EQ(garbage.code, CURLE_OK) << garbage.error;
  EXPECT_EQ(garbage.status, 502);
  EXPECT_EQ(ErrorField(garbage.body, "code"), "unavailable");
  ASSERT_EQ(switched.code, CURLE_OK) << switched.error;
  EXPECT_EQ(switched.status, 502);
  EXPECT_EQ(ErrorField(switched.body, "message"),
            "the system's product did not answer with valid HTTP");
}

TEST_F(HttpProxyTest, Answers504WhenProductIsSilent) {
  FakeProduct product([](ProductConnection& connection) {
    connection.ReadHead();
    connection.WaitForClose();
  });
  decide_ = ForwardTo(product.address());
  HttpServerOptions options = Options();
  options.proxy_idle_timeout = 300ms;
  StartServer(options);

  CurlResult result = CurlClient(CertFile()).Get(Url("/slow"));

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.status, 504);
  EXPECT_EQ(ErrorField(result.body, "code"), "unavailable");
  EXPECT_EQ(ErrorField(result.body, "message"),
            "the system's product did not answer within 300 ms");
}

TEST_F(HttpProxyTest, ForwardsToIpv6Product) {
  FakeProduct product(
      [](ProductConnection& connection) {
        connection.ReadHead();
        connection.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6");
      },
      /*ipv6=*/true);
  if (product.address().empty()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  decide_ = ForwardTo(product.address());
  StartServer(Options());

  CurlResult result = CurlClient(CertFile()).Get(Url("/"));

  ASSERT_EQ(result.code, CURLE_OK) << result.error;
  EXPECT_EQ(result.body, "v6");
}

constexpr char kUpgradeRequest[] =
    "GET /api/kernels/k1/channels?session_id=s1 HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: v1.kernel.websocket.jupyter.org\r\n"
    "\r\n";

constexpr char kProductAccepts[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: v1.kernel.websocket.jupyter.org\r\n"
    "\r\n";

TEST_F(HttpProxyTest, RelaysWebSocketBothWays) {
  std::string binary = PatternBytes(11, 70000);
  std::string client_bytes = MaskedFrame(false, 0x1, "Hello, ") + MaskedFrame(true, 0x9, "ping") +
                             MaskedFrame(false, 0x0, "fragmented ", "\x01\x02\x03\x04") +
                             MaskedFrame(true, 0x0, "world") + MaskedFrame(true, 0x2, binary) +
                             MaskedFrame(true, 0x8, "\x03\xe8");
  const std::string product_text = "\x81\x12hello from product";
  const std::string product_close = std::string("\x88\x02\x03\xe8", 4);
  std::mutex mutex;
  std::string product_head;
  std::string product_received;
  FakeProduct product([&](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    connection.Write(std::string(kProductAccepts) + product_text);
    std::string received = connection.ReadExactly(client_bytes.size());
    {
      std::lock_guard lock(mutex);
      product_head = head;
      product_received = received;
    }
    connection.Write(product_close);
  });
  std::vector<std::string> messages;
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision = ForwardTo(product.address())(request);
    decision.proxy->on_client_message = [&](std::string_view message) {
      std::lock_guard lock(mutex);
      messages.emplace_back(message);
    };
    return decision;
  };
  StartServer(Options());
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());

  ASSERT_TRUE(client.Write(kUpgradeRequest));
  std::string handshake = client.ReadUntil("hello from product", 10s);
  // Half the frames, then the rest, so the proxy sees frames split across reads.
  ASSERT_TRUE(client.Write(std::string_view(client_bytes).substr(0, 20)));
  ASSERT_TRUE(client.Write(std::string_view(client_bytes).substr(20)));
  testing::ReadOutcome rest = client.ReadUntilClosed(10s);

  EXPECT_TRUE(handshake.starts_with("HTTP/1.1 101 Switching Protocols\r\n")) << handshake;
  EXPECT_NE(handshake.find("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos)
      << handshake;
  EXPECT_NE(handshake.find("sec-websocket-protocol: v1.kernel.websocket.jupyter.org\r\n"),
            std::string::npos);
  EXPECT_NE(handshake.find("Upgrade: websocket\r\n"), std::string::npos);
  EXPECT_TRUE(handshake.ends_with("\r\n\r\n" + product_text)) << handshake;
  EXPECT_EQ(rest.data, product_close);
  EXPECT_TRUE(rest.closed);
  std::lock_guard lock(mutex);
  EXPECT_TRUE(product_received == client_bytes) << "the client's frames reached the product changed";
  EXPECT_TRUE(product_head.starts_with(
      "GET /api/kernels/k1/channels?session_id=s1 HTTP/1.1\r\n"))
      << product_head;
  EXPECT_NE(product_head.find("sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), std::string::npos);
  EXPECT_NE(product_head.find("sec-websocket-version: 13\r\n"), std::string::npos);
  EXPECT_TRUE(product_head.ends_with("Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
      << product_head;
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0], "Hello, fragmented world");
  EXPECT_TRUE(messages[1] == binary.substr(0, 64 << 10)) << "binary message size "
                                                         << messages[1].size();
}

TEST_F(HttpProxyTest, RelaysRefusedUpgrade) {
  FakeProduct product([](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nno socket");
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());

  ASSERT_TRUE(client.Write(kUpgradeRequest));
  std::string response = client.ReadUntil("no socket", 10s);

  EXPECT_TRUE(response.starts_with("HTTP/1.1 403 Forbidden\r\n")) << response;
  EXPECT_NE(response.find("Content-Length: 9\r\n"), std::string::npos) << response;
  EXPECT_EQ(response.find("Upgrade"), std::string::npos) << response;
  EXPECT_TRUE(response.ends_with("\r\n\r\nno socket")) << response;
}

TEST_F(HttpProxyTest, WebSocketEndsWhenClientLeaves) {
  std::atomic<bool> product_saw_close{false};
  std::mutex mutex;
  std::string product_received;
  FakeProduct product([&](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write(kProductAccepts);
    std::string received = connection.ReadExactly(MaskedFrame(true, 0x1, "bye").size());
    {
      std::lock_guard lock(mutex);
      product_received = received;
    }
    product_saw_close = connection.WaitForClose();
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  {
    TlsClient client(port_, CertFile());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Write(kUpgradeRequest));
    ASSERT_NE(client.ReadUntil("\r\n\r\n", 10s).find(" 101 "), std::string::npos);
    ASSERT_TRUE(client.Write(MaskedFrame(true, 0x1, "bye")));
  }  // the client closes its socket without a close frame

  EXPECT_TRUE(WaitFor([&] { return product_saw_close.load(); }, 5s));
  std::lock_guard lock(mutex);
  EXPECT_EQ(product_received, MaskedFrame(true, 0x1, "bye"));
}

// Builds an unmasked server-to-client WebSocket text frame of fewer than
// 64 KiB (RFC 6455 section 5.2).
std::string ProductTextFrame(std::string_view payload) {
  std::string frame = "\x81";
  if (payload.size() < 126) {
    frame += static_cast<char>(payload.size());
  } else {
    frame += static_cast<char>(126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xff);
  }
  frame += payload;
  return frame;
}

// A Jupyter kernel replying to execute_request streams messages while the
// client may leave at any moment. Every such close, with or without a close
// frame, with the relay's writes to the client under way, must end both
// connections and leave the server's other connections, current and new,
// untouched: no bytes of a closed connection may reach another one.
TEST_F(HttpProxyTest, ClientCloseMidStreamSparesOthers) {
  constexpr int kClosingClients = 3;
  constexpr int kClosesPerClient = 30;
  constexpr int kMaxFrames = 20000;  // about 20 MB, far more than a client reads
  const std::string padding(900, 'p');
  std::atomic<int> websockets_ended{0};
  FakeProduct websocket_product([&](ProductConnection& connection) {
    connection.ReadHead();
    if (connection.Write(kProductAccepts)) {
      for (int i = 0; i < kMaxFrames; ++i) {
        std::string message = "{\"msg_type\":\"stream\",\"n\":" + std::to_string(i) +
                              ",\"text\":\"" + padding + "\"}";
        if (!connection.Write(ProductTextFrame(message))) break;
      }
    }
    ++websockets_ended;
  });
  FakeProduct http_product([](ProductConnection& connection) {
    std::string head = connection.ReadHead();
    std::string target = head.substr(0, head.find("\r\n"));
    connection.Write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(target.size()) +
                     "\r\n\r\n" + target);
  });
  decide_ = [&](const http::Request& request) {
    if (request.path.starts_with("/ws/")) return ForwardTo(websocket_product.address())(request);
    if (request.path.starts_with("/product/")) return ForwardTo(http_product.address())(request);
    return http::HeadDecision{};  // the handler responds
  };
  HttpServerOptions options = Options();
  options.io_threads = 2;
  StartServer(options);

  // Ordinary requests, each on a new connection, while WebSockets close.
  std::atomic<bool> closing_done{false};
  std::atomic<int> checked{0};
  std::mutex mutex;
  std::vector<std::string> wrong_answers;
  auto check_new_connections = [&](int checker) {
    for (int i = 0; !closing_done || i < 10; ++i) {
      std::string id = std::to_string(checker) + "-" + std::to_string(i);
      CurlRequest request;
      request.url = Url(i % 2 == 0 ? "/plain/" + id : "/product/" + id);
      std::string expected = i % 2 == 0 ? "GET /plain/" + id + " "
                                        : "GET /product/" + id + " HTTP/1.1";
      CurlResult result = CurlClient(CertFile()).Perform(request);
      ++checked;
      if (result.code != CURLE_OK || result.status != 200 || result.body != expected) {
        std::lock_guard lock(mutex);
        wrong_answers.push_back(request.url + ": curl " + std::to_string(result.code) + " " +
                                result.error + ", status " + std::to_string(result.status) +
                                ", body '" + result.body.substr(0, 200) + "'");
      }
    }
  };
  std::vector<std::thread> checkers;
  for (int c = 0; c < 2; ++c) checkers.emplace_back(check_new_connections, c);

  std::atomic<int> relayed{0};
  std::vector<std::thread> closers;
  for (int c = 0; c < kClosingClients; ++c) {
    closers.emplace_back([&, c] {
      for (int i = 0; i < kClosesPerClient; ++i) {
        TlsClient client(port_, CertFile());
        if (!client.connected()) continue;
        std::string upgrade = kUpgradeRequest;
        upgrade.replace(upgrade.find("/api/"), 5, "/ws/" + std::to_string(c) + "/");
        if (!client.Write(upgrade)) continue;
        // Leave after a few messages, while the product is still sending.
        std::string received = client.ReadUntil("\"n\":" + std::to_string(i % 5) + ",", 10s);
        if (received.starts_with("HTTP/1.1 101 ")) ++relayed;
        if (i % 2 == 0) client.Write(MaskedFrame(true, 0x8, "\x03\xe8"));
      }  // the client closes its socket with relayed bytes still unread
    });
  }
  for (std::thread& closer : closers) closer.join();
  closing_done = true;
  for (std::thread& checker : checkers) checker.join();

  EXPECT_EQ(relayed.load(), kClosingClients * kClosesPerClient);
  EXPECT_TRUE(WaitFor(
      [&] { return websockets_ended.load() == kClosingClients * kClosesPerClient; }, 10s))
      << websockets_ended.load() << " of " << kClosingClients * kClosesPerClient
      << " product WebSockets ended after their clients left";
  EXPECT_GE(checked.load(), 20);
  std::lock_guard lock(mutex);
  EXPECT_TRUE(wrong_answers.empty()) << wrong_answers.size() << " wrong answers, first: "
                                     << wrong_answers.front();

  // New connections after the closes: the TLS handshake and the response.
  for (int i = 0; i < 10; ++i) {
    TlsClient client(port_, CertFile());
    ASSERT_TRUE(client.connected()) << "TLS handshake " << i << " after the closes failed";
    ASSERT_TRUE(client.Write("GET /plain/after HTTP/1.1\r\nHost: localhost\r\n"
                             "Connection: close\r\n\r\n"));
    testing::ReadOutcome outcome = client.ReadUntilClosed(10s);
    EXPECT_TRUE(outcome.data.starts_with("HTTP/1.1 200 OK\r\n")) << outcome.data;
    EXPECT_TRUE(outcome.data.ends_with("\r\n\r\nGET /plain/after ")) << outcome.data;
  }
}

TEST_F(HttpProxyTest, StopClosesOpenWebSocket) {
  std::atomic<bool> product_saw_close{false};
  FakeProduct product([&](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write(kProductAccepts);
    product_saw_close = connection.WaitForClose();
  });
  decide_ = ForwardTo(product.address());
  HttpServerOptions options = Options();
  options.shutdown_timeout = 30s;
  StartServer(options);
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write(kUpgradeRequest));
  ASSERT_NE(client.ReadUntil("\r\n\r\n", 10s).find(" 101 "), std::string::npos);

  auto started = Clock::now();
  server_->Stop();
  auto stop_duration = Clock::now() - started;

  EXPECT_LT(stop_duration, 5s) << "Stop() waited for a WebSocket that never ends on its own";
  EXPECT_TRUE(client.ReadUntilClosed(5s).closed);
  EXPECT_TRUE(WaitFor([&] { return product_saw_close.load(); }, 5s));
}

TEST_F(HttpProxyTest, StopEndsProxiedStreamAfterShutdownTimeout) {
  std::atomic<bool> product_saw_close{false};
  FakeProduct product([&](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n");
    product_saw_close = connection.WaitForClose();
  });
  decide_ = ForwardTo(product.address());
  HttpServerOptions options = Options();
  options.shutdown_timeout = 500ms;
  StartServer(options);
  std::atomic<size_t> received{0};
  CurlResult streamed;
  std::thread streaming([&] {
    CurlRequest request;
    request.url = Url("/events");
    request.on_data = [&](std::string_view data) {
      received += data.size();
      return true;
    };
    streamed = CurlClient(CertFile()).Perform(request);
  });
  ASSERT_TRUE(WaitFor([&] { return received.load() > 0; }, 10s));

  auto started = Clock::now();
  server_->Stop();
  auto stop_duration = Clock::now() - started;
  streaming.join();

  EXPECT_GE(stop_duration, 500ms) << "a proxied stream gets the shutdown timeout to finish";
  EXPECT_LT(stop_duration, 3s);
  EXPECT_NE(streamed.code, CURLE_OK);
  EXPECT_EQ(streamed.body, "data: 1\n\n");
  EXPECT_TRUE(WaitFor([&] { return product_saw_close.load(); }, 5s));
}

TEST_F(HttpProxyTest, ClientLeavingMidDownloadClosesProduct) {
  std::atomic<bool> product_write_failed{false};
  FakeProduct product([&](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write("HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n");
    std::string block(64 << 10, 'x');
    for (int i = 0; i < 16384; ++i) {
      if (!connection.Write(block)) {
        product_write_failed = true;
        return;
      }
    }
  });
  decide_ = ForwardTo(product.address());
  StartServer(Options());
  CurlRequest request;
  request.url = Url("/huge");
  request.keep_body = false;
  size_t received = 0;
  request.on_data = [&](std::string_view data) {
    received += data.size();
    return received < (1 << 20);  // abort after 1 MiB
  };

  CurlResult result = CurlClient(CertFile()).Perform(request);

  EXPECT_EQ(result.code, CURLE_WRITE_ERROR);
  EXPECT_TRUE(WaitFor([&] { return product_write_failed.load(); }, 10s))
      << "the product kept sending after the client left";
}


// A product that accepts a WebSocket upgrade and answers each "ping" text
// frame from the client with a "pong" frame, until the proxy closes.
void ServePingPong(ProductConnection& connection, std::atomic<bool>& saw_close) {
  connection.ReadHead();
  if (!connection.Write(kProductAccepts)) return;
  const std::string ping = MaskedFrame(true, 0x1, "ping");
  for (;;) {
    std::string frame = connection.ReadExactly(ping.size());
    if (frame != ping) break;
    if (!connection.Write(ProductTextFrame("pong"))) break;
  }
  saw_close = connection.WaitForClose();
}

TEST_F(HttpProxyTest, WebSocketStaysOpenWhileAccessHolds) {
  std::atomic<bool> product_saw_close{false};
  FakeProduct product([&](ProductConnection& connection) {
    ServePingPong(connection, product_saw_close);
  });
  std::atomic<int> checks{0};
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision = ForwardTo(product.address())(request);
    decision.proxy->still_allowed = [&checks] {
      ++checks;
      return true;
    };
    decision.proxy->recheck_interval = 20ms;
    return decision;
  };
  StartServer(Options());
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write(kUpgradeRequest));
  ASSERT_NE(client.ReadUntil("\r\n\r\n", 10s).find(" 101 "), std::string::npos);

  ASSERT_TRUE(WaitFor([&] { return checks.load() >= 5; }, 10s)) << "access was never re-checked";
  ASSERT_TRUE(client.Write(MaskedFrame(true, 0x1, "ping")));
  std::string reply = client.ReadUntil("pong", 10s);

  EXPECT_EQ(reply, ProductTextFrame("pong")) << "the WebSocket closed while access still held";
  EXPECT_FALSE(product_saw_close.load());
}

TEST_F(HttpProxyTest, WebSocketClosesOnceAccessIsRevoked) {
  std::atomic<bool> product_saw_close{false};
  FakeProduct product([&](ProductConnection& connection) {
    ServePingPong(connection, product_saw_close);
  });
  std::atomic<bool> allowed{true};
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision = ForwardTo(product.address())(request);
    decision.proxy->still_allowed = [&allowed] { return allowed.load(); };
    decision.proxy->recheck_interval = 50ms;
    return decision;
  };
  StartServer(Options());
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write(kUpgradeRequest));
  ASSERT_NE(client.ReadUntil("\r\n\r\n", 10s).find(" 101 "), std::string::npos);
  ASSERT_TRUE(client.Write(MaskedFrame(true, 0x1, "ping")));
  ASSERT_EQ(client.ReadUntil("pong", 10s), ProductTextFrame("pong"));

  allowed = false;
  auto revoked = Clock::now();
  testing::ReadOutcome rest = client.ReadUntilClosed(5s);
  auto close_delay = Clock::now() - revoked;

  EXPECT_TRUE(rest.closed) << "the WebSocket outlived revoked access";
  EXPECT_EQ(rest.data, "");
  EXPECT_LT(close_delay, 2s);
  EXPECT_TRUE(WaitFor([&] { return product_saw_close.load(); }, 5s))
      << "the product's connection outlived revoked access";
}

// The check may block on the database: it runs on a handler thread, and the
// relay (on the only I/O thread here) keeps moving while it waits.
TEST_F(HttpProxyTest, BlockingAccessCheckLeavesRelayRunning) {
  std::atomic<bool> product_saw_close{false};
  FakeProduct product([&](ProductConnection& connection) {
    ServePingPong(connection, product_saw_close);
  });
  std::mutex mutex;
  std::condition_variable changed;
  bool check_started = false;
  std::optional<bool> verdict;
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision = ForwardTo(product.address())(request);
    decision.proxy->still_allowed = [&] {
      std::unique_lock lock(mutex);
      check_started = true;
      changed.notify_all();
      changed.wait(lock, [&] { return verdict.has_value(); });
      return *verdict;
    };
    decision.proxy->recheck_interval = 20ms;
    return decision;
  };
  HttpServerOptions options = Options();
  options.io_threads = 1;
  StartServer(options);
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write(kUpgradeRequest));
  ASSERT_NE(client.ReadUntil("\r\n\r\n", 10s).find(" 101 "), std::string::npos);
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return check_started; }));
  }

  bool written = client.Write(MaskedFrame(true, 0x1, "ping"));
  std::string reply = client.ReadUntil("pong", 10s);
  {
    std::lock_guard lock(mutex);
    verdict = false;
  }
  changed.notify_all();

  EXPECT_TRUE(written);
  EXPECT_EQ(reply, ProductTextFrame("pong")) << "a blocked access check stalled the relay";
  EXPECT_TRUE(client.ReadUntilClosed(5s).closed) << "the WebSocket outlived revoked access";
  EXPECT_TRUE(WaitFor([&] { return product_saw_close.load(); }, 5s));
}

TEST_F(HttpProxyTest, StreamedResponseEndsOnceAccessIsRevoked) {
  std::atomic<bool> product_saw_close{false};
  FakeProduct product([&](ProductConnection& connection) {
    connection.ReadHead();
    connection.Write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n");
    product_saw_close = connection.WaitForClose();
  });
  std::atomic<bool> allowed{true};
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision = ForwardTo(product.address())(request);
    decision.proxy->still_allowed = [&allowed] { return allowed.load(); };
    decision.proxy->recheck_interval = 50ms;
    return decision;
  };
  StartServer(Options());
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write("GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string first = client.ReadUntil("data: 1\n\n", 10s);
  ASSERT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n")) << first;

  allowed = false;
  testing::ReadOutcome rest = client.ReadUntilClosed(5s);

  EXPECT_TRUE(rest.closed) << "the streamed response outlived revoked access";
  EXPECT_EQ(rest.data.find("0\r\n\r\n"), std::string::npos)
      << "a cut stream must not end like a complete one: " << rest.data;
  EXPECT_TRUE(WaitFor([&] { return product_saw_close.load(); }, 5s));
}

TEST_F(HttpProxyTest, AccessCheckEndsWithItsExchange) {
  FakeProduct product([](ProductConnection& connection) {
    for (std::string head = connection.ReadHead(); !head.empty(); head = connection.ReadHead()) {
      if (!connection.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return;
    }
  });
  std::atomic<int> checks{0};
  decide_ = [&](const http::Request& request) {
    http::HeadDecision decision = ForwardTo(product.address())(request);
    if (request.path == "/checked") {
      decision.proxy->still_allowed = [&checks] {
        ++checks;
        return false;
      };
      decision.proxy->recheck_interval = 500ms;
    }
    return decision;
  };
  StartServer(Options());
  TlsClient client(port_, CertFile());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write("GET /checked HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string first = client.ReadUntil("\r\n\r\nok", 10s);
  ASSERT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n")) << first;

  // Several intervals later, the same kept-alive connection serves another
  // request: the finished exchange's check neither ran nor closed it.
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(client.Write("GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string second = client.ReadUntil("\r\n\r\nok", 10s);

  EXPECT_TRUE(second.starts_with("HTTP/1.1 200 OK\r\n")) << second;
  EXPECT_EQ(checks.load(), 0);
}

}  // namespace
}  // namespace puddle
