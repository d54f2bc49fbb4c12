// CurlTransport against real TLS servers on loopback: `openssl s_server` with
// throwaway certificates, and a small CONNECT proxy in a thread.
#include "cli/curl/curl_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_harness.h"

namespace puddle::cli {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

// Runs `argv` (no shell) with stdout to `stdout_path` and stdin from
// `stdin_fd` (or /dev/null), every other descriptor closed. Returns the pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& stdout_path,
            int stdin_fd = -1) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
  int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int null = open("/dev/null", O_WRONLY);
  dup2(in, 0);
  dup2(out, 1);
  dup2(null, 2);
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Runs `argv` to completion; returns its stdout, or "" when it failed.
std::string RunToCompletion(const std::vector<std::string>& argv, const TempDir& dir) {
  const std::string out = (dir.path() / "command.out").string();
  pid_t pid = Spawn(argv, out);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "";
  return ReadFile(out);
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

bool CanConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return connected;
}

// Polls `condition` every 20 ms until it is true or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

struct Certificate {
  std::string cert;
  std::string key;
  std::string fingerprint;  // as `openssl x509 -fingerprint -sha256` reports it
};

Certificate MakeCertificate(const TempDir& dir, const std::string& name) {
  Certificate certificate;
  certificate.cert = (dir.path() / (name + ".pem")).string();
  certificate.key = (dir.path() / (name + "-key.pem")).string();
  RunToCompletion(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", certificate.key, "-out", certificate.cert, "-days", "1", "-subj",
       "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
      dir);
  std::string printed = RunToCompletion(
      {"openssl", "x509", "-in", certificate.cert, "-noout", "-fingerprint", "-sha256"}, dir);
  while (!printed.empty() && std::isspace(static_cast<unsigned char>(printed.back()))) {
    printed.pop_back();
  }
  certificate.fingerprint = NormalizeFingerprint(printed).value_or("");
  return certificate;
}

// One `openssl s_server` on 127.0.0.1, stopped (SIGTERM, then SIGKILL) on destruction.
class TlsServer {
 public:
  // With `www` the server replies to each GET with a status page. Without it,
  // the server writes what it receives to its stdout file and sends no reply.
  TlsServer(const TempDir& dir, const Certificate& certificate, bool www)
      : port_(FreeLoopbackPort()),
        output_((dir.path() / ("s_server-" + std::to_string(port_) + ".out")).string()) {
    // Its stdin stays open (a pipe the test never writes to), because s_server stops at
    // end of input.
    if (pipe(stdin_pipe_) != 0) return;
    std::vector<std::string> argv = {
        "openssl", "s_server",       "-accept", "127.0.0.1:" + std::to_string(port_),
        "-cert",   certificate.cert, "-key",    certificate.key};
    if (www) argv.push_back("-www");
    pid_ = Spawn(argv, output_, stdin_pipe_[0]);
    close(stdin_pipe_[0]);
    ready_ = WaitFor([this] { return CanConnect(port_); });
  }

  ~TlsServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      if (!WaitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; },
                   std::chrono::seconds(5))) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
    }
    close(stdin_pipe_[1]);
  }

  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::string output() const { return ReadFile(output_); }

 private:
  int port_;
  std::string output_;
  int stdin_pipe_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool ready_ = false;
};

// An HTTP CONNECT proxy for one tunnel at a time, on a loopback port, that
// records the CONNECT lines it receives.
class ConnectProxy {
 public:
  ConnectProxy() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    listen(listener_, 4);
    thread_ = std::thread([this] { Serve(); });
  }

  ~ConnectProxy() {
    stop_ = true;
    thread_.join();
    close(listener_);
  }

  int port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (poll(&ready, 1, 50) <= 0) continue;
      int client = accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      Tunnel(client);
      close(client);
    }
  }

  void Tunnel(int client) {
    std::string head;
    char byte;
    while (head.find("\r\n\r\n") == std::string::npos && read(client, &byte, 1) == 1) {
      head += byte;
    }
    std::string first_line = head.substr(0, head.find("\r\n"));
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(first_line);
    }
    // "CONNECT 127.0.0.1:PORT HTTP/1.1"; only loopback targets are served.
    const std::string prefix = "CONNECT 127.0.0.1:";
    if (first_line.rfind(prefix, 0) != 0) return;
    int port = std::atoi(first_line.c_str() + prefix.size());
    int server = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(server, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      close(server);
      return;
    }
    const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (send(client, established.data(), established.size(), MSG_NOSIGNAL) < 0) return;

    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char buffer[16384];
    while (!stop_) {
      if (poll(fds, 2, 50) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        if (n <= 0 || send(fds[1 - i].fd, buffer, n, MSG_NOSIGNAL) != n) closed = true;
      }
      if (closed) break;
    }
    close(server);
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> requests_;
};

HttpCall Get(const std::string& target) { return HttpCall{"GET", target, std::nullopt, {}}; }

class CurlTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Keep requests to the loopback servers away from any proxy the machine
    // has configured; the proxy test sets its own.
    for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                             "no_proxy", "NO_PROXY"}) {
      unsetenv(name);
    }
    dir_ = new TempDir();
    server_cert_ = new Certificate(MakeCertificate(*dir_, "server"));
    other_cert_ = new Certificate(MakeCertificate(*dir_, "other"));
  }

  static void TearDownTestSuite() {
    delete server_cert_;
    delete other_cert_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_EQ(server_cert_->fingerprint.size(), 95u) << "openssl could not make a certificate";
    ASSERT_NE(server_cert_->fingerprint, other_cert_->fingerprint);
  }

  static std::unique_ptr<CurlTransport> Make(
      const std::string& url, TlsPolicy tls,
      std::chrono::seconds timeout = std::chrono::seconds(10)) {
    auto transport = CurlTransport::Create(url, std::move(tls), timeout);
    EXPECT_TRUE(transport) << transport.error().message;
    return transport ? std::move(*transport) : nullptr;
  }

  static TlsPolicy Pinned(const std::string& fingerprint) {
    return TlsPolicy{TlsMode::kPinned, "", fingerprint};
  }

  static TempDir* dir_;
  static Certificate* server_cert_;
  static Certificate* other_cert_;
};

TempDir* CurlTransportTest::dir_ = nullptr;
Certificate* CurlTransportTest::server_cert_ = nullptr;
Certificate* CurlTransportTest::other_cert_ = nullptr;

TEST_F(CurlTransportTest, RecordsFingerprintOpensslReports) {
  TlsServer server(*dir_, *server_cert_, /*www=*/true);
  ASSERT_TRUE(server.ready());
  auto transport = Make(server.url(), TlsPolicy{TlsMode::kInsecure, "", ""});
  auto reply = transport->Send(Get("/healthz"));
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->peer_fingerprint, server_cert_->fingerprint);
}

TEST_F(CurlTransportTest, PinnedMatchSucceeds) {
  TlsServer server(*dir_, *server_cert_, /*www=*/true);
  ASSERT_TRUE(server.ready());
  auto transport = Make(server.url(), Pinned(server_cert_->fingerprint));
  for (int i = 0; i < 2; ++i) {  // the second call reuses the connection
    auto reply = transport->Send(Get("/api/v1/systems"));
    ASSERT_TRUE(reply) << reply.error().message;
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->peer_fingerprint, server_cert_->fingerprint);
  }
}

TEST_F(CurlTransportTest, PinnedMismatchFails) {
  TlsServer server(*dir_, *server_cert_, /*www=*/true);
  ASSERT_TRUE(server.ready());
  auto transport = Make(server.url(), Pinned(other_cert_->fingerprint));
  auto reply = transport->Send(Get("/api/v1/systems"));
  ASSERT_FALSE(reply);
  EXPECT_THAT(reply.error().message, HasSubstr(server_cert_->fingerprint));
  EXPECT_THAT(reply.error().message, HasSubstr(other_cert_->fingerprint));
  EXPECT_THAT(reply.error().message, HasSubstr("nothing was sent"));
}

TEST_F(CurlTransportTest, PinnedMismatchSendsNoRequestBytes) {
  TlsServer server(*dir_, *server_cert_, /*www=*/false);
  ASSERT_TRUE(server.ready());
  {
    auto transport = Make(server.url(), Pinned(other_cert_->fingerprint));
    HttpCall call = Get("/mismatch-request");
    call.headers.emplace_back("X-Puddle-Token", "secret-token");
    ASSERT_FALSE(transport->Send(call));
  }
  // Control: with the right pin the request reaches the server, which echoes
  // it and never replies, so the call times out. s_server serves connections
  // one after another, so once this shows up the first one is over.
  {
    auto transport = Make(server.url(), Pinned(server_cert_->fingerprint), std::chrono::seconds(2));
    EXPECT_FALSE(transport->Send(Get("/match-request")));
  }
  ASSERT_TRUE(WaitFor([&] {
    return server.output().find("GET /match-request") != std::string::npos;
  })) << server.output();
  EXPECT_THAT(server.output(), ::testing::Not(HasSubstr("mismatch-request")));
  EXPECT_THAT(server.output(), ::testing::Not(HasSubstr("secret-token")));
}

TEST_F(CurlTransportTest, CaFileVerifiesChain) {
  TlsServer server(*dir_, *server_cert_, /*www=*/true);
  ASSERT_TRUE(server.ready());

  auto trusted = Make(server.url(), TlsPolicy{TlsMode::kCaFile, server_cert_->cert, ""});
  auto reply = trusted->Send(Get("/"));
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->status, 200);

  auto wrong_ca = Make(server.url(), TlsPolicy{TlsMode::kCaFile, other_cert_->cert, ""});
  auto refused = wrong_ca->Send(Get("/"));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("--ca-cert"));
}

TEST_F(CurlTransportTest, SystemCaRejectsSelfSigned) {
  TlsServer server(*dir_, *server_cert_, /*www=*/true);
  ASSERT_TRUE(server.ready());
  auto transport = Make(server.url(), TlsPolicy{TlsMode::kSystemCa, "", ""});
  auto reply = transport->Send(Get("/"));
  ASSERT_FALSE(reply);
  EXPECT_THAT(reply.error().message, HasSubstr("puddle login"));
}

TEST_F(CurlTransportTest, MissingCaFileIsReported) {
  auto transport = CurlTransport::Create("https://127.0.0.1:1",
                                         TlsPolicy{TlsMode::kCaFile, "/nonexistent/ca.pem", ""});
  ASSERT_FALSE(transport);
  EXPECT_THAT(transport.error().message, HasSubstr("/nonexistent/ca.pem"));
}

TEST_F(CurlTransportTest, RefusesPlainHttp) {
  auto transport = CurlTransport::Create("http://127.0.0.1:1", TlsPolicy{});
  ASSERT_FALSE(transport);
  EXPECT_THAT(transport.error().message, HasSubstr("https://"));
}

TEST_F(CurlTransportTest, ProxyFromEnvironmentKeepsPin) {
  TlsServer server(*dir_, *server_cert_, /*www=*/true);
  ASSERT_TRUE(server.ready());
  ConnectProxy proxy;
  setenv("https_proxy", ("http://127.0.0.1:" + std::to_string(proxy.port())).c_str(), 1);

  auto pinned = Make(server.url(), Pinned(server_cert_->fingerprint));
  auto reply = pinned->Send(Get("/through-proxy"));
  auto mismatched = Make(server.url(), Pinned(other_cert_->fingerprint));
  auto refused = mismatched->Send(Get("/through-proxy"));
  unsetenv("https_proxy");

  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->status, 200);
  EXPECT_FALSE(refused);
  EXPECT_THAT(
      proxy.requests(),
      ::testing::Contains("CONNECT 127.0.0.1:" + std::to_string(server.port()) + " HTTP/1.1"));
}

}  // namespace
}  // namespace puddle::cli
