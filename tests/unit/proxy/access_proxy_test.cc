#include "api/proxy/access_proxy.h"

#include <gtest/gtest.h>

#include <map>

#include "../core/core_fixture.h"
#include "common/crypto.h"

namespace puddle::proxy {
namespace {

using puddle::testing::CoreTest;

constexpr char kPuddleHost[] = "127.0.0.1:8443";

class RecordingSink : public ActivitySink {
 public:
  void OnProxiedRequest(const std::string& system_id, std::string_view method,
                        std::string_view path) override {
    requests.push_back(system_id + " " + std::string(method) + " " + std::string(path));
  }
  void OnClientMessage(const std::string& system_id, std::string_view message) override {
    messages.push_back(system_id + " " + std::string(message));
  }
  std::vector<std::string> requests;
  std::vector<std::string> messages;
};

std::string HeaderOf(const http::HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

std::map<std::string, std::string> QueryOf(const std::string& url) {
  std::map<std::string, std::string> query;
  size_t question = url.find('?');
  if (question == std::string::npos) return query;
  std::string rest = url.substr(question + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t amp = rest.find('&', pos);
    if (amp == std::string::npos) amp = rest.size();
    std::string pair = rest.substr(pos, amp - pos);
    size_t equals = pair.find('=');
    query[pair.substr(0, equals)] = equals == std::string::npos ? "" : pair.substr(equals + 1);
    pos = amp + 1;
  }
  return query;
}

std::string Decode(const std::string& text) {
  std::string decoded;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      decoded += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

class AccessProxyTest : public CoreTest {
 protected:
  void SetUp() override {
    CoreTest::SetUp();
    AuthOptions auth_options;
    auth_options.token_secret = "test-secret";
    auth_ = std::make_unique<AuthService>(*store_, auth_options);
    access_ = std::make_unique<SystemAccessService>(*store_, *auth_);
    proxy_ = std::make_unique<AccessProxy>(
        AccessProxyDependencies{config_, *store_, *auth_, *access_, *systems_, &sink_});
    system_ = MustCreateRunning(alice_, "notebook");
    origin_ = "https://" + system_.id + ".systems.localhost:8443";
  }

  // A credential of `kind` for `actor`, inserted directly; returns its value.
  std::string NewCredential(Actor& actor, CredentialKind kind) {
    std::string value = RandomToken(32);
    Credential credential;
    credential.hash = Sha256Hex(value);
    credential.kind = kind;
    credential.user_id = actor.user_id;
    credential.created_at = clock_.Now();
    credential.last_used_at = clock_.Now();
    credential.expires_at = clock_.Now() + std::chrono::hours(24);
    EXPECT_TRUE(store_->Write([&](Tx& tx) { return tx.InsertCredential(credential); }));
    return value;
  }

  static http::Request Request(std::string method, std::string host, std::string target,
                               http::HeaderList headers = {}) {
    http::Request request;
    request.method = std::move(method);
    request.target = target;
    size_t question = target.find('?');
    request.path = Decode(target.substr(0, question));
    if (question != std::string::npos) {
      for (const auto& [key, value] : QueryOf(target))
        request.query.emplace_back(key, Decode(value));
    }
    request.headers = std::move(headers);
    request.headers.emplace_back("host", std::move(host));
    request.peer_address = "127.0.0.9";
    request.request_id = "req-1";
    return request;
  }

  // Signs `actor` in, opens the system and exchanges the code; returns the system cookie.
  std::string OpenAs(Actor& actor, const std::string& system_id) {
    std::string session = NewCredential(actor, CredentialKind::kSession);
    Actor with_session = actor;
    with_session.session_hash = Sha256Hex(session);
    auto opened =
        proxy_->Open(with_session, Request("GET", kPuddleHost, "/open"), system_id, std::nullopt);
    EXPECT_TRUE(opened) << (opened ? "" : opened.error().message);
    if (!opened) return {};
    std::string location(opened->Header("location"));
    std::string code = QueryOf(location)["code"];
    auto exchanged = proxy_->Decide(
        Request("GET", system_id + ".systems.localhost:8443", "/.puddle/session?code=" + code));
    EXPECT_TRUE(exchanged.response.has_value());
    if (!exchanged.response) return {};
    std::string set_cookie(exchanged.response->Header("set-cookie"));
    std::string prefix = std::string(kSystemCookie) + "=";
    EXPECT_EQ(set_cookie.rfind(prefix, 0), 0u) << set_cookie;
    return set_cookie.substr(prefix.size(), set_cookie.find(';') - prefix.size());
  }

  http::HeadDecision OnSystem(const std::string& method, const std::string& target,
                              http::HeaderList headers) {
    return OnSystemOf(system_.id, method, target, std::move(headers));
  }
  http::HeadDecision OnSystemOf(const std::string& system_id, const std::string& method,
                                const std::string& target, http::HeaderList headers) {
    return proxy_->Decide(
        Request(method, system_id + ".systems.localhost:8443", target, std::move(headers)));
  }

  void SetRole(const Actor& actor, Role role) {
    ASSERT_TRUE(store_->Write([&](Tx& tx) -> Status {
      PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(actor.user_id));
      user->role = role;
      return tx.UpdateUser(*user);
    }));
  }

  RecordingSink sink_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<SystemAccessService> access_;
  std::unique_ptr<AccessProxy> proxy_;
  System system_;
  std::string origin_;
};

TEST_F(AccessProxyTest, PuddleHostLeavesApiRequestsToTheApi) {
  auto decision = proxy_->Decide(Request("GET", kPuddleHost, "/api/v1/auth/me"));
  EXPECT_FALSE(decision.response.has_value());
  EXPECT_FALSE(decision.proxy.has_value());
  decision = proxy_->Decide(Request("GET", "localhost:8443", "/healthz"));
  EXPECT_FALSE(decision.response.has_value());
  EXPECT_FALSE(decision.proxy.has_value());
}

TEST_F(AccessProxyTest, UnknownHostGets404) {
  auto decision = proxy_->Decide(Request("GET", "rebound.attacker.example:8443", "/healthz"));
  ASSERT_TRUE(decision.response.has_value());
  EXPECT_EQ(decision.response->status, 404);
  EXPECT_NE(decision.response->body.find("\"not_found\""), std::string::npos);
}

TEST_F(AccessProxyTest, SystemOriginNeverServesPuddlesApi) {
  for (const char* path : {"/healthz", "/api/v1/auth/me", "/login", "/"}) {
    auto decision = OnSystem("GET", path, {});
    ASSERT_TRUE(decision.response.has_value()) << path;
    EXPECT_EQ(decision.response->status, 401) << path;
  }
  std::string cookie = OpenAs(alice_, system_.id);
  auto decision =
      OnSystem("GET", "/api/v1/auth/me", {{"cookie", std::string(kSystemCookie) + "=" + cookie}});
  ASSERT_TRUE(decision.proxy.has_value()) << "a system origin's paths belong to the product";
  EXPECT_EQ(decision.proxy->target, "/api/v1/auth/me");
}

TEST_F(AccessProxyTest, OpenRedirectsToTheSystemOriginWithASingleUseCode) {
  std::string session = NewCredential(alice_, CredentialKind::kSession);
  Actor actor = alice_;
  actor.session_hash = Sha256Hex(session);
  auto opened = proxy_->Open(actor, Request("GET", kPuddleHost, "/x"), system_.id, std::nullopt);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(opened->status, 302);
  std::string location(opened->Header("location"));
  EXPECT_EQ(location.rfind(origin_ + "/.puddle/session?code=", 0), 0u) << location;
  auto query = QueryOf(location);
  EXPECT_GE(query["code"].size(), 22u) << "at least 128 bits";
  EXPECT_EQ(Decode(query["next"]), "/systems/" + system_.id + "/");

  // The code is stored only as its SHA-256.
  auto stored = store_->ReadValue<std::optional<SystemAccessGrant>>(
      [&](Tx& tx) { return tx.GetSystemAccess(query["code"]); });
  ASSERT_TRUE(stored);
  EXPECT_FALSE(stored->has_value());

  auto first =
      OnSystem("GET", "/.puddle/session?code=" + query["code"] + "&next=%2Ftree%3Fa%3D1", {});
  ASSERT_TRUE(first.response.has_value());
  EXPECT_EQ(first.response->status, 302);
  EXPECT_EQ(first.response->Header("location"), "/tree?a=1");
  std::string set_cookie(first.response->Header("set-cookie"));
  EXPECT_NE(set_cookie.find("; Path=/; Secure; HttpOnly; SameSite=Lax"), std::string::npos);
  EXPECT_EQ(set_cookie.find("Domain"), std::string::npos);

  auto second = OnSystem("GET", "/.puddle/session?code=" + query["code"], {});
  ASSERT_TRUE(second.response.has_value());
  EXPECT_EQ(second.response->status, 401) << "a code works once";
}

TEST_F(AccessProxyTest, CodeIsBoundToItsSystemAndExpiresAfterAMinute) {
  System other = MustCreateRunning(alice_, "other");
  std::string session = NewCredential(alice_, CredentialKind::kSession);
  Actor actor = alice_;
  actor.session_hash = Sha256Hex(session);

  auto opened = proxy_->Open(actor, Request("GET", kPuddleHost, "/x"), other.id, std::nullopt);
  ASSERT_TRUE(opened);
  std::string code = QueryOf(std::string(opened->Header("location")))["code"];
  auto wrong = OnSystem("GET", "/.puddle/session?code=" + code, {});
  ASSERT_TRUE(wrong.response.has_value());
  EXPECT_EQ(wrong.response->status, 401) << "a code for another system was accepted";
  // Tried on the wrong origin, the code is used up: it cannot be probed first.
  auto right = OnSystemOf(other.id, "GET", "/.puddle/session?code=" + code, {});
  ASSERT_TRUE(right.response.has_value());
  EXPECT_EQ(right.response->status, 401) << "a code tried on another system stayed usable";

  opened = proxy_->Open(actor, Request("GET", kPuddleHost, "/x"), system_.id, std::nullopt);
  ASSERT_TRUE(opened);
  code = QueryOf(std::string(opened->Header("location")))["code"];
  clock_.Advance(std::chrono::seconds(61));
  auto late = OnSystem("GET", "/.puddle/session?code=" + code, {});
  ASSERT_TRUE(late.response.has_value());
  EXPECT_EQ(late.response->status, 401) << "a code older than 60 s was accepted";
}

TEST_F(AccessProxyTest, OpenNeedsABrowserSessionOfSomeoneWhoMayUseTheSystem) {
  auto anonymous_browser =
      proxy_->Open(std::nullopt,
                   Request("GET", kPuddleHost, "/api/v1/systems/" + system_.id + "/open",
                           {{"accept", "text/html,application/xhtml+xml"}}),
                   system_.id, std::nullopt);
  ASSERT_TRUE(anonymous_browser);
  EXPECT_EQ(anonymous_browser->status, 302);
  EXPECT_EQ(anonymous_browser->Header("location"),
            "/login?next=/api/v1/systems/" + system_.id + "/open");

  auto anonymous_program =
      proxy_->Open(std::nullopt, Request("GET", kPuddleHost, "/o"), system_.id, std::nullopt);
  ASSERT_FALSE(anonymous_program);
  EXPECT_EQ(anonymous_program.error().code, ErrorCode::kUnauthenticated);

  auto with_token =
      proxy_->Open(alice_, Request("GET", kPuddleHost, "/o"), system_.id, std::nullopt);
  ASSERT_FALSE(with_token);
  EXPECT_EQ(with_token.error().code, ErrorCode::kForbidden);

  Actor bob = bob_;
  bob.session_hash = Sha256Hex(NewCredential(bob_, CredentialKind::kSession));
  auto other_user = proxy_->Open(bob, Request("GET", kPuddleHost, "/o"), system_.id, std::nullopt);
  ASSERT_FALSE(other_user);
  EXPECT_EQ(other_user.error().code, ErrorCode::kNotFound);
}

TEST_F(AccessProxyTest, OpenOfAStoppedSystemIsAConflict) {
  MustRequest(alice_, system_.id, OperationAction::kStop);
  RunJobs();
  Actor actor = alice_;
  actor.session_hash = Sha256Hex(NewCredential(alice_, CredentialKind::kSession));
  auto opened = proxy_->Open(actor, Request("GET", kPuddleHost, "/o"), system_.id, std::nullopt);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kConflict);
  EXPECT_EQ(opened.error().status, "stopped");
}

TEST_F(AccessProxyTest, OpenAnswers503WhenSystemOriginsCannotWork) {
  config_.listen = "0.0.0.0:8443";
  AccessProxy proxy({config_, *store_, *auth_, *access_, *systems_, nullptr});
  Actor actor = alice_;
  actor.session_hash = Sha256Hex(NewCredential(alice_, CredentialKind::kSession));
  auto opened = proxy.Open(actor, Request("GET", kPuddleHost, "/o"), system_.id, std::nullopt);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(opened.error().message.find("proxy.systemsDomain"), std::string::npos);
}

TEST_F(AccessProxyTest, ValidCookieForwardsWithoutPuddlesCredentials) {
  std::string cookie = OpenAs(alice_, system_.id);
  auto decision = OnSystem("GET", "/systems/" + system_.id + "/api/kernels?x=1",
                           {{"cookie", "_xsrf=abc; " + std::string(kSystemCookie) + "=" + cookie +
                                           "; __Host-puddle_session=s3cret"},
                            {"x-puddle-token", "t0ken"},
                            {"authorization", "Bearer t0ken"},
                            {"origin", origin_},
                            {"accept", "application/json"}});
  ASSERT_TRUE(decision.proxy.has_value());
  const http::ProxyTarget& target = *decision.proxy;
  EXPECT_EQ(target.address, system_.address);
  EXPECT_EQ(target.target, "/systems/" + system_.id + "/api/kernels?x=1");
  auto token = systems_->ProductToken(system_);
  ASSERT_TRUE(token);
  EXPECT_EQ(HeaderOf(target.request_headers, "authorization"), "token " + *token);
  EXPECT_EQ(HeaderOf(target.request_headers, "host"), system_.address);
  EXPECT_EQ(HeaderOf(target.request_headers, "cookie"), "_xsrf=abc");
  EXPECT_EQ(HeaderOf(target.request_headers, "x-puddle-token"), "");
  EXPECT_EQ(HeaderOf(target.request_headers, "origin"), "");
  EXPECT_EQ(HeaderOf(target.request_headers, "accept"), "application/json");
  EXPECT_EQ(HeaderOf(target.request_headers, "x-forwarded-for"), "127.0.0.9");
  EXPECT_EQ(HeaderOf(target.request_headers, "x-forwarded-proto"), "https");
  EXPECT_EQ(HeaderOf(target.request_headers, "x-forwarded-host"),
            system_.id + ".systems.localhost:8443");
  int authorizations = 0;
  for (const auto& [name, value] : target.request_headers)
    authorizations += name == "authorization";
  EXPECT_EQ(authorizations, 1);
  EXPECT_GT(target.max_body_bytes, size_t{1} << 30);
  EXPECT_TRUE(target.remove_response_headers.empty());

  ASSERT_EQ(sink_.requests.size(), 1u);
  EXPECT_EQ(sink_.requests[0], system_.id + " GET /systems/" + system_.id + "/api/kernels");
  ASSERT_TRUE(target.on_client_message);
  target.on_client_message("{\"msg_type\":\"execute_request\"}");
  ASSERT_EQ(sink_.messages.size(), 1u);
  EXPECT_EQ(sink_.messages[0], system_.id + " {\"msg_type\":\"execute_request\"}");
}

TEST_F(AccessProxyTest, CookieOfOneSystemDoesNotOpenAnother) {
  System other = MustCreateRunning(alice_, "other");
  std::string cookie = OpenAs(alice_, other.id);
  auto decision = OnSystem("GET", "/", {{"cookie", std::string(kSystemCookie) + "=" + cookie}});
  ASSERT_TRUE(decision.response.has_value());
  EXPECT_EQ(decision.response->status, 401);
}

TEST_F(AccessProxyTest, WithoutACookieBrowsersGoToOpenAndProgramsGet401) {
  auto browser = OnSystem("GET", "/systems/" + system_.id + "/tree?x=1", {{"accept", "text/html"}});
  ASSERT_TRUE(browser.response.has_value());
  EXPECT_EQ(browser.response->status, 302);
  EXPECT_EQ(browser.response->Header("location"), "https://localhost:8443/api/v1/systems/" +
                                                      system_.id + "/open?next=/systems/" +
                                                      system_.id + "/tree%3Fx%3D1");
  auto program = OnSystem("GET", "/systems/" + system_.id + "/api/status", {});
  ASSERT_TRUE(program.response.has_value());
  EXPECT_EQ(program.response->status, 401);
}

TEST_F(AccessProxyTest, UnsafeMethodsAndWebSocketsNeedThisSystemsOrigin) {
  std::string cookie = OpenAs(alice_, system_.id);
  System other = MustCreateRunning(alice_, "other");
  std::string other_origin = "https://" + other.id + ".systems.localhost:8443";
  std::string with_cookie = std::string(kSystemCookie) + "=" + cookie;
  struct Case {
    std::string method;
    http::HeaderList headers;
    bool allowed;
  };
  std::vector<Case> cases = {
      {"POST", {{"cookie", with_cookie}}, false},
      {"POST", {{"cookie", with_cookie}, {"origin", other_origin}}, false},
      {"DELETE", {{"cookie", with_cookie}, {"origin", "https://localhost:8443"}}, false},
      {"POST", {{"cookie", with_cookie}, {"origin", origin_}}, true},
      {"GET", {{"cookie", with_cookie}, {"upgrade", "websocket"}}, false},
      {"GET", {{"cookie", with_cookie}, {"upgrade", "websocket"}, {"origin", other_origin}}, false},
      {"GET", {{"cookie", with_cookie}, {"upgrade", "websocket"}, {"origin", origin_}}, true},
      // Split or other Upgrade headers are judged like a WebSocket upgrade.
      {"GET", {{"cookie", with_cookie}, {"upgrade", "h2c"}, {"upgrade", "websocket"}}, false},
      {"GET", {{"cookie", with_cookie}, {"upgrade", "h2c"}}, false},
      {"GET", {{"cookie", with_cookie}}, true},
  };
  for (const Case& test : cases) {
    auto decision = OnSystem(test.method, "/systems/" + system_.id + "/api/contents", test.headers);
    std::string what = test.method + " with " + HeaderOf(test.headers, "origin") +
                       (HeaderOf(test.headers, "upgrade").empty() ? "" : " (upgrade)");
    if (test.allowed) {
      EXPECT_TRUE(decision.proxy.has_value()) << what;
    } else {
      ASSERT_TRUE(decision.response.has_value()) << what;
      EXPECT_EQ(decision.response->status, 403) << what;
    }
  }
}

TEST_F(AccessProxyTest, PuddlePathsOnASystemOriginAreNeverForwarded) {
  std::string cookie = OpenAs(alice_, system_.id);
  std::string with_cookie = std::string(kSystemCookie) + "=" + cookie;
  for (const char* path : {"/.puddle/other", "/%2epuddle/anything", "/.puddle", "//.puddle/session",
                           "/.PUDDLE/session", "/x/../.puddle/session", "/./.puddle"}) {
    auto decision = OnSystem("GET", path, {{"cookie", with_cookie}});
    EXPECT_FALSE(decision.proxy.has_value()) << path;
    ASSERT_TRUE(decision.response.has_value()) << path;
    EXPECT_EQ(decision.response->status, 404) << path;
  }
}

TEST_F(AccessProxyTest, SystemCookieEndsWithItsSession) {
  std::string session = NewCredential(alice_, CredentialKind::kSession);
  Actor actor = alice_;
  actor.session_hash = Sha256Hex(session);
  auto opened = proxy_->Open(actor, Request("GET", kPuddleHost, "/x"), system_.id, std::nullopt);
  ASSERT_TRUE(opened);
  std::string code = QueryOf(std::string(opened->Header("location")))["code"];
  auto exchanged = OnSystem("GET", "/.puddle/session?code=" + code, {});
  std::string set_cookie(exchanged.response->Header("set-cookie"));
  std::string cookie =
      set_cookie.substr(set_cookie.find('=') + 1, set_cookie.find(';') - set_cookie.find('=') - 1);
  std::string header = std::string(kSystemCookie) + "=" + cookie;
  ASSERT_TRUE(OnSystem("GET", "/", {{"cookie", header}}).proxy.has_value());

  ASSERT_TRUE(auth_->Logout(actor.session_hash));
  auto after = OnSystem("GET", "/", {{"cookie", header}});
  ASSERT_TRUE(after.response.has_value());
  EXPECT_EQ(after.response->status, 401);
}

TEST_F(AccessProxyTest, SystemCookieEndsWhenTheUserIsDisabled) {
  std::string header = std::string(kSystemCookie) + "=" + OpenAs(alice_, system_.id);
  ASSERT_TRUE(OnSystem("GET", "/", {{"cookie", header}}).proxy.has_value());
  ASSERT_TRUE(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(alice_.user_id));
    user->disabled = true;
    user->credential_generation += 1;
    return tx.UpdateUser(*user);
  }));
  auto after = OnSystem("GET", "/", {{"cookie", header}});
  ASSERT_TRUE(after.response.has_value());
  EXPECT_EQ(after.response->status, 401);
}

TEST_F(AccessProxyTest, DemotedAdminGets404AndDeletedSystemEndsTheCookie) {
  std::string admin_header = std::string(kSystemCookie) + "=" + OpenAs(admin_, system_.id);
  std::string owner_header = std::string(kSystemCookie) + "=" + OpenAs(alice_, system_.id);
  ASSERT_TRUE(OnSystem("GET", "/", {{"cookie", admin_header}}).proxy.has_value());

  SetRole(admin_, Role::kUser);
  auto demoted = OnSystem("GET", "/", {{"cookie", admin_header}});
  ASSERT_TRUE(demoted.response.has_value());
  EXPECT_EQ(demoted.response->status, 404);

  MustRequest(alice_, system_.id, OperationAction::kDelete);
  auto deleted = OnSystem("GET", "/", {{"cookie", owner_header}});
  ASSERT_TRUE(deleted.response.has_value());
  EXPECT_EQ(deleted.response->status, 404);
}

TEST_F(AccessProxyTest, ProgramsPathTakesHeaderTokensOnly) {
  std::string token = NewCredential(alice_, CredentialKind::kToken);
  std::string session = NewCredential(alice_, CredentialKind::kSession);
  std::string base = "/systems/" + system_.id + "/";

  auto with_token =
      proxy_->Decide(Request("GET", kPuddleHost, base + "api/status", {{"x-puddle-token", token}}));
  ASSERT_TRUE(with_token.proxy.has_value());
  EXPECT_EQ(with_token.proxy->target, base + "api/status");
  EXPECT_EQ(with_token.proxy->remove_response_headers,
            (std::vector<std::string>{"set-cookie", "set-cookie2"}));
  EXPECT_EQ(HeaderOf(with_token.proxy->add_response_headers, "content-security-policy"), "sandbox");
  EXPECT_EQ(HeaderOf(with_token.proxy->add_response_headers, "x-content-type-options"), "nosniff");
  EXPECT_EQ(HeaderOf(with_token.proxy->request_headers, "cookie"), "");

  auto bearer =
      proxy_->Decide(Request("GET", kPuddleHost, base, {{"authorization", "Bearer " + token}}));
  EXPECT_TRUE(bearer.proxy.has_value());

  auto cookie_only = proxy_->Decide(
      Request("GET", kPuddleHost, base, {{"cookie", "__Host-puddle_session=" + session}}));
  ASSERT_TRUE(cookie_only.response.has_value());
  EXPECT_EQ(cookie_only.response->status, 401) << "a cookie counted on the programs' path";

  auto browser = proxy_->Decide(
      Request("GET", kPuddleHost, base,
              {{"cookie", "__Host-puddle_session=" + session}, {"accept", "text/html"}}));
  ASSERT_TRUE(browser.response.has_value());
  EXPECT_EQ(browser.response->status, 302);
  EXPECT_EQ(browser.response->Header("location"), "/api/v1/systems/" + system_.id + "/open");

  std::string bob_token = NewCredential(bob_, CredentialKind::kToken);
  auto other = proxy_->Decide(Request("GET", kPuddleHost, base, {{"x-puddle-token", bob_token}}));
  ASSERT_TRUE(other.response.has_value());
  EXPECT_EQ(other.response->status, 404);

  std::string admin_token = NewCredential(admin_, CredentialKind::kToken);
  auto admin = proxy_->Decide(Request("GET", kPuddleHost, base, {{"x-puddle-token", admin_token}}));
  EXPECT_TRUE(admin.proxy.has_value());
}

TEST_F(AccessProxyTest, StripModeRemovesTheSystemPrefix) {
  ASSERT_TRUE(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto image, tx.GetImage(system_.image_id));
    image->launch.base_path_mode = "strip";
    return tx.UpdateImage(*image);
  }));
  std::string token = NewCredential(alice_, CredentialKind::kToken);
  auto deep = proxy_->Decide(Request("GET", kPuddleHost, "/systems/" + system_.id + "/3/Cloud?q=1",
                                     {{"x-puddle-token", token}}));
  ASSERT_TRUE(deep.proxy.has_value());
  EXPECT_EQ(deep.proxy->target, "/3/Cloud?q=1");
  auto root = proxy_->Decide(
      Request("GET", kPuddleHost, "/systems/" + system_.id + "?q=1", {{"x-puddle-token", token}}));
  ASSERT_TRUE(root.proxy.has_value());
  EXPECT_EQ(root.proxy->target, "/?q=1");
  EXPECT_EQ(sink_.requests.back(), system_.id + " GET /");

  // On its own origin the product's root is the default place to land.
  Actor actor = alice_;
  actor.session_hash = Sha256Hex(NewCredential(alice_, CredentialKind::kSession));
  auto opened = proxy_->Open(actor, Request("GET", kPuddleHost, "/o"), system_.id, std::nullopt);
  ASSERT_TRUE(opened);
  EXPECT_EQ(Decode(QueryOf(std::string(opened->Header("location")))["next"]), "/");
}

TEST_F(AccessProxyTest, ForwardsOnlyToRunningSystems) {
  std::string header = std::string(kSystemCookie) + "=" + OpenAs(alice_, system_.id);
  MustRequest(alice_, system_.id, OperationAction::kStop);
  RunJobs();
  auto decision = OnSystem("GET", "/", {{"cookie", header}});
  ASSERT_TRUE(decision.response.has_value());
  EXPECT_EQ(decision.response->status, 503);
}

TEST(NextPathTest, OnlyPathsOnTheSameOriginOutsidePuddlesOwn) {
  EXPECT_TRUE(IsSafeNext("/systems/ab/tree"));
  EXPECT_TRUE(IsSafeNext("/"));
  EXPECT_FALSE(IsSafeNext(""));
  EXPECT_FALSE(IsSafeNext("//evil.example/"));
  EXPECT_FALSE(IsSafeNext("/\\evil.example/"));
  EXPECT_FALSE(IsSafeNext("https://evil.example/"));
  EXPECT_FALSE(IsSafeNext("/.puddle/session?code=x"));
  EXPECT_FALSE(IsSafeNext("/a\nb"));
}


// --- re-checks of open connections (ProxyTarget::still_allowed) ---

TEST_F(AccessProxyTest, RecheckOfCookieEndsWhenTheUserIsDisabled) {
  std::string header = std::string(kSystemCookie) + "=" + OpenAs(alice_, system_.id);
  auto decision = OnSystem("GET", "/api/kernels/k1/channels", {{"cookie", header}});
  ASSERT_TRUE(decision.proxy.has_value());
  ASSERT_TRUE(decision.proxy->still_allowed) << "a forwarded request must be re-checkable";
  EXPECT_EQ(decision.proxy->recheck_interval, std::chrono::seconds(5));
  EXPECT_TRUE(decision.proxy->still_allowed());

  ASSERT_TRUE(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(alice_.user_id));
    user->disabled = true;
    user->credential_generation += 1;
    return tx.UpdateUser(*user);
  }));

  EXPECT_FALSE(decision.proxy->still_allowed()) << "a disabled user's connection stays open";
}

TEST_F(AccessProxyTest, RecheckOfCookieEndsWithSignOut) {
  std::string session = NewCredential(alice_, CredentialKind::kSession);
  Actor actor = alice_;
  actor.session_hash = Sha256Hex(session);
  auto opened = proxy_->Open(actor, Request("GET", kPuddleHost, "/x"), system_.id, std::nullopt);
  ASSERT_TRUE(opened);
  std::string code = QueryOf(std::string(opened->Header("location")))["code"];
  auto exchanged = OnSystem("GET", "/.puddle/session?code=" + code, {});
  ASSERT_TRUE(exchanged.response.has_value());
  std::string set_cookie(exchanged.response->Header("set-cookie"));
  std::string cookie =
      set_cookie.substr(set_cookie.find('=') + 1, set_cookie.find(';') - set_cookie.find('=') - 1);
  auto decision = OnSystem("GET", "/", {{"cookie", std::string(kSystemCookie) + "=" + cookie}});
  ASSERT_TRUE(decision.proxy.has_value());
  ASSERT_TRUE(decision.proxy->still_allowed);
  EXPECT_TRUE(decision.proxy->still_allowed());

  ASSERT_TRUE(auth_->Logout(actor.session_hash));

  EXPECT_FALSE(decision.proxy->still_allowed()) << "a connection outlived its sign-out";
}

TEST_F(AccessProxyTest, RecheckOfCookieEndsOnDemotionAndDeletion) {
  auto admin_decision = OnSystem(
      "GET", "/", {{"cookie", std::string(kSystemCookie) + "=" + OpenAs(admin_, system_.id)}});
  auto owner_decision = OnSystem(
      "GET", "/", {{"cookie", std::string(kSystemCookie) + "=" + OpenAs(alice_, system_.id)}});
  ASSERT_TRUE(admin_decision.proxy.has_value());
  ASSERT_TRUE(owner_decision.proxy.has_value());
  ASSERT_TRUE(admin_decision.proxy->still_allowed);
  ASSERT_TRUE(owner_decision.proxy->still_allowed);
  EXPECT_TRUE(admin_decision.proxy->still_allowed());

  SetRole(admin_, Role::kUser);

  EXPECT_FALSE(admin_decision.proxy->still_allowed())
      << "a demoted admin keeps a connection to another user's system";
  EXPECT_TRUE(owner_decision.proxy->still_allowed()) << "the owner lost access by the demotion";

  MustRequest(alice_, system_.id, OperationAction::kDelete);

  EXPECT_FALSE(owner_decision.proxy->still_allowed()) << "a connection outlived its system";
}

TEST_F(AccessProxyTest, RecheckOfHeaderTokenFollowsRoleTokenAndSystem) {
  std::string base = "/systems/" + system_.id + "/";
  std::string admin_token = NewCredential(admin_, CredentialKind::kToken);
  std::string owner_token = NewCredential(alice_, CredentialKind::kToken);
  auto admin = proxy_->Decide(Request("GET", kPuddleHost, base, {{"x-puddle-token", admin_token}}));
  auto owner = proxy_->Decide(
      Request("GET", kPuddleHost, base, {{"authorization", "Bearer " + owner_token}}));
  ASSERT_TRUE(admin.proxy.has_value());
  ASSERT_TRUE(owner.proxy.has_value());
  ASSERT_TRUE(admin.proxy->still_allowed);
  ASSERT_TRUE(owner.proxy->still_allowed);
  EXPECT_EQ(admin.proxy->recheck_interval, std::chrono::seconds(5));
  EXPECT_TRUE(admin.proxy->still_allowed());
  EXPECT_TRUE(owner.proxy->still_allowed());

  SetRole(admin_, Role::kUser);
  EXPECT_FALSE(admin.proxy->still_allowed()) << "a demoted admin's token keeps its connection";
  SetRole(admin_, Role::kAdmin);
  EXPECT_TRUE(admin.proxy->still_allowed());
  ASSERT_TRUE(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(admin_.user_id));
    user->disabled = true;
    user->credential_generation += 1;
    return tx.UpdateUser(*user);
  }));
  EXPECT_FALSE(admin.proxy->still_allowed()) << "a disabled user's token keeps its connection";

  MustRequest(alice_, system_.id, OperationAction::kDelete);
  EXPECT_FALSE(owner.proxy->still_allowed()) << "a connection outlived its system";
}

TEST_F(AccessProxyTest, RecheckIntervalComesFromTheDependencies) {
  AccessProxyDependencies dependencies{config_, *store_, *auth_, *access_, *systems_, &sink_};
  dependencies.recheck_interval = std::chrono::milliseconds(250);
  AccessProxy proxy(dependencies);
  std::string header = std::string(kSystemCookie) + "=" + OpenAs(alice_, system_.id);

  auto decision =
      proxy.Decide(Request("GET", system_.id + ".systems.localhost:8443", "/", {{"cookie", header}}));

  ASSERT_TRUE(decision.proxy.has_value());
  EXPECT_EQ(decision.proxy->recheck_interval, std::chrono::milliseconds(250));
}

}  // namespace
}  // namespace puddle::proxy
