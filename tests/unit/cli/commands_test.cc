// The client commands end to end against a scripted server: arguments, exit
// codes, what is sent, and what is printed.
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "cli/cli_config.h"
#include "cli_harness.h"

namespace puddle::cli {
namespace {

using testing::CliHarness;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Reply;
using testing::TempDir;

constexpr char kFingerprint[] =
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:"
    "EF";
constexpr char kTokenReply[] = R"({"token":"tok-1","expiresAt":"2030-01-01T00:00:00.000Z"})";

std::string SystemJson(const std::string& id, const std::string& status) {
  return R"({"id":")" + id +
         R"(","name":"nb","owner":"alice","ownerId":"u1",)"
         R"("product":"jupyter","version":"6.4.12","systemType":"cpu-small","status":")" +
         status +
         R"(","vmStatus":"running","productStatus":"ready","url":null,"directUrl":null,)"
         R"("pricePerHour":0.25,"cost":1.5,"idleTimeoutMinutes":30,"activity":null,)"
         R"("createdAt":"2026-01-02T03:04:05.000Z","updatedAt":"2026-01-02T03:04:06.000Z"})";
}

std::string ErrorJson(const std::string& code, const std::string& message,
                      const std::string& field = "") {
  boost::json::object error{{"code", code}, {"message", message}, {"requestId", "req-1"}};
  if (!field.empty()) error["field"] = field;
  return boost::json::serialize(boost::json::object{{"error", error}});
}

std::string HeaderValue(const HttpCall& call, const std::string& name) {
  for (const auto& [key, value] : call.headers) {
    if (key == name) return value;
  }
  return "";
}

boost::json::object BodyOf(const HttpCall& call) {
  return boost::json::parse(call.json_body.value_or("{}")).as_object();
}

// A system whose status moves one step per GET, with events appearing as it
// moves, served on the events endpoint with index cursors ("c3").
struct ScriptedSystem {
  std::string id = "abc";
  std::vector<std::string> statuses;
  std::vector<std::vector<std::string>> step_events;  // messages added at each step
  std::vector<std::string> events;
  size_t step = 0;

  std::optional<Result<HttpReply>> Handle(const HttpCall& call) {
    const std::string system_path = "/api/v1/systems/" + id;
    if (call.method == "GET" && call.target == system_path) {
      size_t index = std::min(step, statuses.size() - 1);
      if (step < step_events.size()) {
        for (const auto& message : step_events[step]) events.push_back(message);
      }
      ++step;
      return Result<HttpReply>(Reply(200, SystemJson(id, statuses[index])));
    }
    if (call.method == "GET" && call.target.rfind(system_path + "/events?", 0) == 0) {
      size_t from = 0;
      if (auto at = call.target.find("cursor=c"); at != std::string::npos) {
        from = std::stoul(call.target.substr(at + 8));
      }
      boost::json::array items;
      for (size_t i = from; i < events.size(); ++i) {
        items.push_back(
            boost::json::object{{"id", "e" + std::to_string(i)},
                                {"time", "2026-01-02T03:04:0" + std::to_string(i % 10) + ".000Z"},
                                {"level", "info"},
                                {"message", events[i]},
                                {"operationId", "op1"}});
      }
      return Result<HttpReply>(
          Reply(200, boost::json::serialize(boost::json::object{
                         {"items", items}, {"nextCursor", "c" + std::to_string(events.size())}})));
    }
    return std::nullopt;
  }
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cli_.vars["PUDDLE_URL"] = "https://puddle.test:8443";
    cli_.vars["PUDDLE_API_KEY_ID"] = "key-1";
    cli_.vars["PUDDLE_API_SECRET_KEY"] = "secret-1";
    cli_.server->fingerprint = kFingerprint;
    cli_.server->handler = [this](const HttpCall& call) -> Result<HttpReply> {
      if (call.method == "POST" && call.target == "/api/v1/auth/token") {
        ++token_exchanges_;
        return Reply(200, kTokenReply);
      }
      if (unreachable_calls_ > 0 && call.target.rfind("/api/v1/systems/abc", 0) == 0 &&
          call.method == "GET") {
        --unreachable_calls_;
        return MakeError(ErrorCode::kUnavailable, "GET " + call.target + ": Connection refused");
      }
      if (auto reply = system_.Handle(call)) return *reply;
      if (route_) {
        if (auto reply = route_(call)) return *reply;
      }
      return Reply(404, ErrorJson("not_found", "no route for " + call.target));
    };
  }

  CliHarness cli_;
  ScriptedSystem system_;
  std::function<std::optional<Result<HttpReply>>(const HttpCall&)> route_;
  int token_exchanges_ = 0;
  int unreachable_calls_ = 0;  // GETs of system abc that fail as if the server were down
};

TEST_F(CommandsTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"systems"},
      {"systems", "get"},
      {"systems", "get", "Not_An_Id"},
      {"systems", "list", "--bogus"},
      {"systems", "list", "--all", "--owner", "u1"},
      {"systems", "list", "--status", "sleeping"},
      {"systems", "--output", "xml", "list"},
      {"systems", "create", "--product", "jupyter", "--version", "1", "--system-type", "t"},
      {"systems", "create", "--name", "n", "--product", "p", "--version", "1", "--system-type", "t",
       "--idle-timeout", "soon"},
      {"systems", "start", "abc", "--timeout", "0"},
      {"systems", "wait", "abc"},
      {"systems", "wait", "abc", "--status", "done"},
      {"login", "https://puddle.test", "extra-argument"},
  };
  for (const auto& args : cases) {
    EXPECT_EQ(cli_.Run(args), 2) << ::testing::PrintToString(args);
  }
  EXPECT_TRUE(cli_.server->calls.empty());
}

TEST_F(CommandsTest, HelpExitsZero) {
  EXPECT_EQ(cli_.Run({"systems", "create", "--help"}), 0);
  EXPECT_THAT(cli_.out.str(), HasSubstr("--system-type"));
}

TEST_F(CommandsTest, LoginWithoutUrlIsUsageError) {
  cli_.vars.erase("PUDDLE_URL");
  EXPECT_EQ(cli_.Run({"login", "--username", "alice", "--password-stdin"}), 2);
  EXPECT_THAT(cli_.err.str(), HasSubstr("PUDDLE_URL"));
}

TEST_F(CommandsTest, MissingCredentialExitsOneWithHint) {
  cli_.vars.erase("PUDDLE_API_KEY_ID");
  cli_.vars.erase("PUDDLE_API_SECRET_KEY");
  EXPECT_EQ(cli_.Run({"systems", "list"}), 1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("no API key for https://puddle.test:8443"));
  EXPECT_THAT(cli_.err.str(), HasSubstr("puddle login"));
  EXPECT_TRUE(cli_.server->calls.empty());
}

TEST_F(CommandsTest, NoServerAtAllExitsOne) {
  cli_.vars.clear();
  cli_.vars["HOME"] = cli_.home.path().string();
  EXPECT_EQ(cli_.Run({"systems", "get", "abc"}), 1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("no Puddle server configured"));
}

TEST_F(CommandsTest, ListExchangesKeyAndPrintsTable) {
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.target.rfind("/api/v1/systems?", 0) == 0) {
      return Result<HttpReply>(
          Reply(200, R"({"items":[)" + SystemJson("abc", "running") + R"(],"nextCursor":null})"));
    }
    return std::nullopt;
  };

  ASSERT_EQ(cli_.Run({"systems", "list"}), 0) << cli_.err.str();

  auto token_calls = cli_.server->CallsTo("POST", "/api/v1/auth/token");
  ASSERT_EQ(token_calls.size(), 1u);
  EXPECT_EQ(BodyOf(token_calls[0]),
            (boost::json::object{{"apiKeyId", "key-1"}, {"apiSecretKey", "secret-1"}}));
  auto list_calls = cli_.server->CallsTo("GET", "/api/v1/systems");
  ASSERT_EQ(list_calls.size(), 1u);
  EXPECT_EQ(list_calls[0].target, "/api/v1/systems?limit=500&owner=me");
  EXPECT_EQ(HeaderValue(list_calls[0], "X-Puddle-Token"), "tok-1");
  EXPECT_EQ(cli_.server->connections.at(0).base_url, "https://puddle.test:8443");

  EXPECT_THAT(cli_.out.str(), HasSubstr("ID"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("STATUS"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("abc"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("jupyter 6.4.12"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("running"));
}

TEST_F(CommandsTest, ListFiltersMapToQuery) {
  std::vector<std::string> targets;
  route_ = [&targets](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    targets.push_back(call.target);
    return Result<HttpReply>(Reply(200, R"({"items":[],"nextCursor":null})"));
  };
  ASSERT_EQ(cli_.Run({"systems", "list", "--all", "--status", "deleted"}), 0);
  ASSERT_EQ(cli_.Run({"systems", "list", "--owner", "user 2"}), 0);
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0], "/api/v1/systems?limit=500&status=deleted");
  EXPECT_EQ(targets[1], "/api/v1/systems?limit=500&owner=user%202");
  EXPECT_THAT(cli_.out.str(), HasSubstr("No systems."));
}

TEST_F(CommandsTest, ListJsonPrintsBodyUnchanged) {
  const std::string body = R"({"items": [ ], "nextCursor" : null})";
  route_ = [&body](const HttpCall&) -> std::optional<Result<HttpReply>> {
    return Result<HttpReply>(Reply(200, body));
  };
  ASSERT_EQ(cli_.Run({"systems", "list", "--output", "json"}), 0);
  EXPECT_EQ(cli_.out.str(), body + "\n");
}

TEST_F(CommandsTest, ListFollowsCursorAcrossPages) {
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.target.find("cursor=page2") == std::string::npos) {
      return Result<HttpReply>(Reply(
          200, R"({"items":[)" + SystemJson("one", "running") + R"(],"nextCursor":"page2"})"));
    }
    return Result<HttpReply>(
        Reply(200, R"({"items":[)" + SystemJson("two", "stopped") + R"(],"nextCursor":null})"));
  };
  ASSERT_EQ(cli_.Run({"systems", "-o", "json", "list"}), 0);
  auto merged = boost::json::parse(cli_.out.str()).as_object();
  ASSERT_EQ(merged.at("items").as_array().size(), 2u);
  EXPECT_EQ(merged.at("items").as_array()[1].at("id"), "two");
  EXPECT_TRUE(merged.at("nextCursor").is_null());
}

TEST_F(CommandsTest, GetPrintsSummaryOrJson) {
  system_.statuses = {"running"};
  ASSERT_EQ(cli_.Run({"systems", "get", "abc"}), 0);
  EXPECT_THAT(cli_.out.str(), HasSubstr("Status:         running (machine: running"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("Idle timeout:   30 min"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("Cost:           1.5"));

  ASSERT_EQ(cli_.Run({"systems", "get", "abc", "--output", "json"}), 0);
  EXPECT_EQ(cli_.out.str(), SystemJson("abc", "running") + "\n");
}

TEST_F(CommandsTest, ApiErrorPrintsMessageAndField) {
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "POST" && call.target == "/api/v1/systems") {
      return Result<HttpReply>(Reply(
          400, ErrorJson("validation_failed", "system type \"gpu\" does not exist", "systemType")));
    }
    return std::nullopt;
  };
  EXPECT_EQ(cli_.Run({"systems", "create", "--name", "nb", "--product", "jupyter", "--version",
                      "6.4.12", "--system-type", "gpu", "--idle-timeout", "-1"}),
            1);
  EXPECT_EQ(cli_.err.str(), "puddle: system type \"gpu\" does not exist (field: systemType)\n");
  auto create_calls = cli_.server->CallsTo("POST", "/api/v1/systems");
  ASSERT_EQ(create_calls.size(), 1u);
  EXPECT_EQ(BodyOf(create_calls[0]), (boost::json::object{{"name", "nb"},
                                                          {"product", "jupyter"},
                                                          {"version", "6.4.12"},
                                                          {"systemType", "gpu"},
                                                          {"idleTimeoutMinutes", -1}}));
}

TEST_F(CommandsTest, NonJsonErrorNamesHttpStatus) {
  route_ = [](const HttpCall&) -> std::optional<Result<HttpReply>> {
    return Result<HttpReply>(Reply(502, "<html>Bad Gateway</html>"));
  };
  EXPECT_EQ(cli_.Run({"systems", "stop", "abc"}), 1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("HTTP 502"));
}

TEST_F(CommandsTest, RejectedKeyExitsOne) {
  cli_.server->handler = [](const HttpCall&) -> Result<HttpReply> {
    return Reply(401, ErrorJson("unauthenticated", "invalid API key"));
  };
  EXPECT_EQ(cli_.Run({"systems", "list"}), 1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("invalid API key"));
}

TEST_F(CommandsTest, ExpiredTokenIsRenewedOnce) {
  int list_calls = 0;
  route_ = [&list_calls](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (++list_calls == 1) {
      return Result<HttpReply>(Reply(401, ErrorJson("unauthenticated", "token expired")));
    }
    return Result<HttpReply>(Reply(200, R"({"items":[],"nextCursor":null})"));
  };
  ASSERT_EQ(cli_.Run({"systems", "list"}), 0) << cli_.err.str();
  EXPECT_EQ(token_exchanges_, 2);
  EXPECT_EQ(list_calls, 2);
}

TEST_F(CommandsTest, ActionsUseTheirMethods) {
  std::vector<std::string> seen;
  route_ = [&seen](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    seen.push_back(call.method + " " + call.target + (call.json_body ? " body" : ""));
    return Result<HttpReply>(Reply(202, SystemJson("abc", "stopping")));
  };
  for (std::string action : {"start", "stop", "reboot", "delete"}) {
    ASSERT_EQ(cli_.Run({"systems", action, "abc"}), 0) << action << cli_.err.str();
  }
  EXPECT_THAT(seen, ::testing::ElementsAre(
                        "POST /api/v1/systems/abc/start", "POST /api/v1/systems/abc/stop",
                        "POST /api/v1/systems/abc/reboot", "DELETE /api/v1/systems/abc"));
}

TEST_F(CommandsTest, StartWaitPrintsEventsUntilRunning) {
  system_.statuses = {"starting", "starting", "running"};
  system_.events = {"older event"};
  system_.step_events = {{"starting process"}, {}, {"health check passed", "running"}};
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "POST" && call.target == "/api/v1/systems/abc/start") {
      return Result<HttpReply>(Reply(202, SystemJson("abc", "starting")));
    }
    return std::nullopt;
  };

  ASSERT_EQ(cli_.Run({"systems", "start", "abc", "--wait"}), 0) << cli_.err.str();

  const std::string progress = cli_.err.str();
  EXPECT_THAT(progress, Not(HasSubstr("older event")));
  EXPECT_THAT(progress, HasSubstr("info     starting process"));
  EXPECT_THAT(progress, HasSubstr("health check passed"));
  EXPECT_LT(progress.find("starting process"), progress.find("health check passed"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("Status:         running"));
  EXPECT_EQ(token_exchanges_, 1);
  EXPECT_EQ(cli_.slept, std::chrono::milliseconds(2000));

  // Each events request continues from the cursor the previous one returned.
  auto event_calls = cli_.server->CallsTo("GET", "/api/v1/systems/abc/events");
  ASSERT_GE(event_calls.size(), 3u);
  EXPECT_THAT(event_calls[0].target, Not(HasSubstr("cursor=")));
  EXPECT_THAT(event_calls[1].target, HasSubstr("cursor=c1"));
  EXPECT_THAT(event_calls.back().target, HasSubstr("cursor=c2"));
}

TEST_F(CommandsTest, WaitEndingInFailedExitsThree) {
  system_.statuses = {"starting", "failed"};
  system_.step_events = {{}, {"process exited with status 1"}};
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "POST" && call.target == "/api/v1/systems") {
      return Result<HttpReply>(Reply(201, SystemJson("abc", "queued")));
    }
    return std::nullopt;
  };
  EXPECT_EQ(cli_.Run({"systems", "create", "--name", "nb", "--product", "jupyter", "--version",
                      "6.4.12", "--system-type", "cpu-small", "--wait", "--output", "json"}),
            3);
  EXPECT_THAT(cli_.err.str(), HasSubstr("process exited with status 1"));
  EXPECT_THAT(cli_.err.str(), HasSubstr("system abc failed"));
  EXPECT_EQ(cli_.out.str(), SystemJson("abc", "failed") + "\n");
}

TEST_F(CommandsTest, WaitTimesOutWithExitThree) {
  system_.statuses = {"stopping"};
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "POST") return Result<HttpReply>(Reply(202, SystemJson("abc", "stopping")));
    return std::nullopt;
  };
  EXPECT_EQ(cli_.Run({"systems", "stop", "abc", "--wait", "--timeout", "5"}), 3);
  EXPECT_THAT(cli_.err.str(), HasSubstr("timed out after 5 s"));
  EXPECT_THAT(cli_.err.str(), HasSubstr("it is stopping"));
  EXPECT_EQ(cli_.slept, std::chrono::milliseconds(5000));
}

TEST_F(CommandsTest, WaitRetriesUnreachableServer) {
  system_.statuses = {"starting", "running"};
  unreachable_calls_ = 2;
  EXPECT_EQ(cli_.Run({"systems", "wait", "abc", "--status", "running"}), 1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("Connection refused"));

  // Once a wait has begun, a server that stops responding for a while is retried.
  unreachable_calls_ = 0;
  system_.step = 0;
  route_ = [this](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "POST") {
      unreachable_calls_ = 2;
      return Result<HttpReply>(Reply(202, SystemJson("abc", "starting")));
    }
    return std::nullopt;
  };
  EXPECT_EQ(cli_.Run({"systems", "start", "abc", "--wait"}), 0) << cli_.err.str();
  EXPECT_THAT(cli_.err.str(), HasSubstr("Connection refused; retrying"));
  EXPECT_THAT(cli_.out.str(), HasSubstr("Status:         running"));
}

TEST_F(CommandsTest, WaitTimeoutWhileUnreachableSaysSo) {
  unreachable_calls_ = 1000;
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "POST") return Result<HttpReply>(Reply(202, SystemJson("abc", "stopping")));
    return std::nullopt;
  };
  cli_.server->handler = [this, inner = cli_.server->handler](const HttpCall& call) {
    // Let the events cursor be read before the action, then fail every poll.
    if (call.target.find("/events") != std::string::npos && call.method == "GET" &&
        cli_.server->CallsTo("POST", "/api/v1/systems/abc/stop").empty()) {
      return Result<HttpReply>(Reply(200, R"({"items":[],"nextCursor":"c0"})"));
    }
    return inner(call);
  };
  EXPECT_EQ(cli_.Run({"systems", "stop", "abc", "--wait", "--timeout", "3"}), 3);
  EXPECT_THAT(cli_.err.str(), HasSubstr("its status could not be read"));
}

TEST_F(CommandsTest, ActionWaitEndingElsewhereExitsThree) {
  system_.statuses = {"stopping", "running"};
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "POST") return Result<HttpReply>(Reply(202, SystemJson("abc", "stopping")));
    return std::nullopt;
  };
  EXPECT_EQ(cli_.Run({"systems", "stop", "abc", "--wait"}), 3);
  EXPECT_THAT(cli_.err.str(), HasSubstr("is running, so it will not become stopped"));
}

TEST_F(CommandsTest, WaitCommandWaitsThroughOtherStatuses) {
  system_.statuses = {"running", "stopping", "stopped"};
  EXPECT_EQ(cli_.Run({"systems", "wait", "abc", "--status", "stopped"}), 0) << cli_.err.str();
  EXPECT_EQ(system_.step, 3u);
  EXPECT_TRUE(cli_.server->CallsTo("POST", "/api/v1/systems/").empty());
}

TEST_F(CommandsTest, WaitForDeletedStopsWhenDeleted) {
  system_.statuses = {"deleting", "deleted"};
  route_ = [](const HttpCall& call) -> std::optional<Result<HttpReply>> {
    if (call.method == "DELETE") {
      return Result<HttpReply>(Reply(202, SystemJson("abc", "deleting")));
    }
    return std::nullopt;
  };
  EXPECT_EQ(cli_.Run({"systems", "delete", "abc", "--wait"}), 0) << cli_.err.str();
}

// Login and logout.

class LoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cli_.server->fingerprint = kFingerprint;
    cli_.server->handler = [this](const HttpCall& call) -> Result<HttpReply> {
      if (call.target == "/healthz") return Reply(200, R"({"status":"ok"})");
      if (call.method == "POST" && call.target == "/api/v1/auth/token") {
        auto body = BodyOf(call);
        if (body.contains("password") && body.at("password") != "correct horse") {
          return Reply(401, ErrorJson("unauthenticated", "wrong user name or password"));
        }
        return Reply(200, kTokenReply);
      }
      if (call.method == "POST" && call.target == "/api/v1/api-keys") {
        ++keys_created_;
        std::string id = "key-" + std::to_string(keys_created_);
        return Reply(201, R"({"apiKeyId":")" + id + R"(","apiSecretKey":"s3cret-)" + id +
                              R"(","name":"cli@testhost","createdAt":"2026-01-01T00:00:00.000Z"})");
      }
      if (call.method == "DELETE" && call.target.rfind("/api/v1/api-keys/", 0) == 0) {
        deleted_.push_back(call.target.substr(17));
        return Reply(204, "");
      }
      return Reply(404, ErrorJson("not_found", "no route"));
    };
  }

  int Login(std::vector<std::string> extra = {}) {
    cli_.in.clear();
    cli_.in.str("correct horse\n");
    std::vector<std::string> args = {"login", "https://puddle.test:8443/", "--username", "alice",
                                     "--password-stdin"};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli_.Run(args);
  }

  std::string ConfigText() {
    std::ifstream file(cli_.ConfigPath());
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

  CliHarness cli_;
  int keys_created_ = 0;
  std::vector<std::string> deleted_;
};

TEST_F(LoginTest, StoresKeyAndPinNotPassword) {
  ASSERT_EQ(Login(), 0) << cli_.err.str();

  auto stored = ReadCliConfig(cli_.ConfigPath());
  ASSERT_TRUE(stored);
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->url, "https://puddle.test:8443");
  EXPECT_EQ((*stored)->fingerprint_sha256, kFingerprint);
  EXPECT_EQ((*stored)->api_key_id, "key-1");
  EXPECT_EQ((*stored)->api_secret_key, "s3cret-key-1");
  EXPECT_THAT(ConfigText(), Not(HasSubstr("correct horse")));
  struct stat info {};
  ASSERT_EQ(stat(cli_.ConfigPath().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_THAT(cli_.err.str(), HasSubstr(kFingerprint));

  // The password and the key request go only to the certificate just shown.
  ASSERT_EQ(cli_.server->connections.size(), 2u);
  EXPECT_EQ(cli_.server->connections[0].tls.mode, TlsMode::kInsecure);
  EXPECT_EQ(cli_.server->connections[1].tls.mode, TlsMode::kPinned);
  EXPECT_EQ(cli_.server->connections[1].tls.pinned_fingerprint, kFingerprint);

  auto token_calls = cli_.server->CallsTo("POST", "/api/v1/auth/token");
  ASSERT_EQ(token_calls.size(), 1u);
  EXPECT_EQ(BodyOf(token_calls[0]),
            (boost::json::object{{"username", "alice"}, {"password", "correct horse"}}));
  auto key_calls = cli_.server->CallsTo("POST", "/api/v1/api-keys");
  ASSERT_EQ(key_calls.size(), 1u);
  EXPECT_EQ(BodyOf(key_calls[0]), (boost::json::object{{"name", "cli@testhost"}}));
  EXPECT_EQ(HeaderValue(key_calls[0], "X-Puddle-Token"), "tok-1");
}

TEST_F(LoginTest, StoredLoginServesLaterCommands) {
  ASSERT_EQ(Login(), 0) << cli_.err.str();
  cli_.server->calls.clear();
  cli_.server->connections.clear();

  EXPECT_EQ(cli_.Run({"systems", "list"}), 1);  // the scripted server has no list route

  ASSERT_EQ(cli_.server->connections.size(), 1u);
  EXPECT_EQ(cli_.server->connections[0].base_url, "https://puddle.test:8443");
  EXPECT_EQ(cli_.server->connections[0].tls.mode, TlsMode::kPinned);
  auto token_calls = cli_.server->CallsTo("POST", "/api/v1/auth/token");
  ASSERT_EQ(token_calls.size(), 1u);
  EXPECT_EQ(BodyOf(token_calls[0]),
            (boost::json::object{{"apiKeyId", "key-1"}, {"apiSecretKey", "s3cret-key-1"}}));
}

TEST_F(LoginTest, WrongPasswordStoresNothing) {
  cli_.in.str("wrong\n");
  EXPECT_EQ(
      cli_.Run({"login", "https://puddle.test:8443", "--username", "alice", "--password-stdin"}),
      1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("wrong user name or password"));
  EXPECT_FALSE(std::filesystem::exists(cli_.ConfigPath()));
}

TEST_F(LoginTest, FingerprintMismatchSendsNoPassword) {
  const std::string other(64, 'f');
  EXPECT_EQ(Login({"--fingerprint", other}), 1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("differs from --fingerprint"));
  EXPECT_TRUE(cli_.server->CallsTo("POST", "/api/v1/auth/token").empty());
  EXPECT_FALSE(std::filesystem::exists(cli_.ConfigPath()));
}

TEST_F(LoginTest, MatchingFingerprintFlagIsAccepted) {
  std::string lower = kFingerprint;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(Login({"--fingerprint", lower}), 0) << cli_.err.str();
  EXPECT_THAT(cli_.err.str(), HasSubstr("matches --fingerprint"));
}

TEST_F(LoginTest, InteractiveRejectionSendsNoPassword) {
  cli_.terminal->interactive = true;
  cli_.terminal->answers = {"alice", "n"};
  EXPECT_EQ(cli_.Run({"login", "https://puddle.test:8443"}), 1);
  EXPECT_THAT(cli_.terminal->prompts,
              ::testing::ElementsAre("Username: ", "Trust this certificate? [y/N] "));
  EXPECT_TRUE(cli_.server->CallsTo("POST", "/api/v1/auth/token").empty());
}

TEST_F(LoginTest, InteractiveLoginPromptsForPassword) {
  cli_.terminal->interactive = true;
  cli_.terminal->answers = {"alice", "y", "correct horse"};
  EXPECT_EQ(cli_.Run({"login", "https://puddle.test:8443"}), 0) << cli_.err.str();
  EXPECT_THAT(cli_.terminal->prompts,
              ::testing::ElementsAre("Username: ", "Trust this certificate? [y/N] ", "Password: "));
  EXPECT_TRUE(std::filesystem::exists(cli_.ConfigPath()));
}

TEST_F(LoginTest, NonInteractiveWithoutPasswordStdinIsUsageError) {
  EXPECT_EQ(cli_.Run({"login", "https://puddle.test:8443", "--username", "alice"}), 2);
  EXPECT_THAT(cli_.err.str(), HasSubstr("--password-stdin"));
  EXPECT_TRUE(cli_.server->CallsTo("POST", "/api/v1/auth/token").empty());
}

TEST_F(LoginTest, HttpUrlIsUsageError) {
  EXPECT_EQ(cli_.Run({"login", "http://puddle.test", "--username", "a", "--password-stdin"}), 2);
  EXPECT_THAT(cli_.err.str(), HasSubstr("https://"));
}

TEST_F(LoginTest, CaCertIsStoredAndUsed) {
  TempDir ca_dir;
  const auto ca = ca_dir.path() / "ca.pem";
  { std::ofstream(ca) << "not checked by the fake transport\n"; }
  ASSERT_EQ(Login({"--ca-cert", ca.string()}), 0) << cli_.err.str();
  EXPECT_EQ(cli_.server->connections[0].tls.mode, TlsMode::kCaFile);
  EXPECT_EQ(cli_.server->connections[1].tls.mode, TlsMode::kCaFile);
  auto stored = ReadCliConfig(cli_.ConfigPath());
  ASSERT_TRUE(stored);
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->ca_cert, ca.string());
}

TEST_F(LoginTest, InsecureLoginStillPinsSession) {
  ASSERT_EQ(Login({"--insecure"}), 0) << cli_.err.str();
  EXPECT_EQ(cli_.server->connections[0].tls.mode, TlsMode::kInsecure);
  EXPECT_EQ(cli_.server->connections[1].tls.mode, TlsMode::kPinned);
  auto stored = ReadCliConfig(cli_.ConfigPath());
  ASSERT_TRUE(stored);
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->fingerprint_sha256, kFingerprint);
}

TEST_F(LoginTest, LoggingInAgainDeletesPreviousKey) {
  ASSERT_EQ(Login(), 0);
  ASSERT_EQ(Login(), 0) << cli_.err.str();
  EXPECT_THAT(deleted_, ::testing::ElementsAre("key-1"));
  auto stored = ReadCliConfig(cli_.ConfigPath());
  ASSERT_TRUE(stored);
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->api_key_id, "key-2");
  EXPECT_THAT(cli_.err.str(), HasSubstr("pinned at the last login"));
}

TEST_F(LoginTest, LogoutDeletesKeyAndFile) {
  ASSERT_EQ(Login(), 0);
  ASSERT_EQ(cli_.Run({"logout"}), 0) << cli_.err.str();
  EXPECT_THAT(deleted_, ::testing::ElementsAre("key-1"));
  EXPECT_FALSE(std::filesystem::exists(cli_.ConfigPath()));
  EXPECT_EQ(cli_.server->connections.back().tls.mode, TlsMode::kPinned);

  EXPECT_EQ(cli_.Run({"logout"}), 0);
  EXPECT_THAT(cli_.out.str(), HasSubstr("Not logged in"));
}

TEST_F(LoginTest, LogoutKeepsFileWhenServerUnreachable) {
  ASSERT_EQ(Login(), 0);
  cli_.server->handler = [](const HttpCall&) -> Result<HttpReply> {
    return MakeError(ErrorCode::kUnavailable, "connection refused");
  };
  EXPECT_EQ(cli_.Run({"logout"}), 1);
  EXPECT_THAT(cli_.err.str(), HasSubstr("logout --local"));
  EXPECT_TRUE(std::filesystem::exists(cli_.ConfigPath()));

  EXPECT_EQ(cli_.Run({"logout", "--local"}), 0);
  EXPECT_FALSE(std::filesystem::exists(cli_.ConfigPath()));
}

TEST_F(LoginTest, LogoutWithRevokedKeyRemovesFile) {
  ASSERT_EQ(Login(), 0);
  cli_.server->handler = [](const HttpCall&) -> Result<HttpReply> {
    return Reply(401, ErrorJson("unauthenticated", "invalid API key"));
  };
  EXPECT_EQ(cli_.Run({"logout"}), 0) << cli_.err.str();
  EXPECT_THAT(cli_.out.str(), HasSubstr("already deleted"));
  EXPECT_FALSE(std::filesystem::exists(cli_.ConfigPath()));
}

}  // namespace
}  // namespace puddle::cli
