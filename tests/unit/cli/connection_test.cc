#include "cli/connection.h"

#include <map>

#include <gtest/gtest.h>

#include "cli_harness.h"

namespace puddle::cli {
namespace {

using testing::TempDir;

constexpr char kPin[] =
    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:"
    "89";

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { vars_["XDG_CONFIG_HOME"] = dir_.path().string(); }

  void WriteStoredLogin() {
    CliConfig config;
    config.url = "https://puddle.example.com:8443";
    config.fingerprint_sha256 = kPin;
    config.api_key_id = "file-key";
    config.api_secret_key = "file-secret";
    ASSERT_TRUE(WriteCliConfig(dir_.path() / "puddle" / "cli.yaml", config));
  }

  Result<Connection> Resolve(ConnectionOptions options = {}) {
    return ResolveConnection(
        [this](const std::string& name) -> std::optional<std::string> {
          auto found = vars_.find(name);
          if (found == vars_.end() || found->second.empty()) return std::nullopt;
          return found->second;
        },
        options);
  }

  TempDir dir_;
  std::map<std::string, std::string> vars_;
};

TEST_F(ConnectionTest, StoredLoginIsUsed) {
  WriteStoredLogin();
  auto connection = Resolve();
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ(connection->base_url, "https://puddle.example.com:8443");
  EXPECT_EQ(connection->api_key_id, "file-key");
  EXPECT_EQ(connection->api_secret_key, "file-secret");
  EXPECT_EQ(connection->tls.mode, TlsMode::kPinned);
  EXPECT_EQ(connection->tls.pinned_fingerprint, kPin);
}

TEST_F(ConnectionTest, EnvironmentOverridesFileUpperCase) {
  WriteStoredLogin();
  vars_["PUDDLE_API_KEY_ID"] = "env-key";
  vars_["PUDDLE_API_SECRET_KEY"] = "env-secret";
  auto connection = Resolve();
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ(connection->api_key_id, "env-key");
  EXPECT_EQ(connection->api_secret_key, "env-secret");
  // Same server as stored, so the stored pin still applies.
  EXPECT_EQ(connection->tls.mode, TlsMode::kPinned);
}

TEST_F(ConnectionTest, EnvironmentOverridesFileLowerCase) {
  WriteStoredLogin();
  vars_["PUDDLE_api_key_id"] = "env-key";
  vars_["PUDDLE_api_secret_key"] = "env-secret";
  auto connection = Resolve();
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ(connection->api_key_id, "env-key");
  EXPECT_EQ(connection->api_secret_key, "env-secret");
}

TEST_F(ConnectionTest, EnvironmentAloneIsEnough) {
  vars_["PUDDLE_URL"] = "https://other.example.com/";
  vars_["PUDDLE_API_KEY_ID"] = "env-key";
  vars_["PUDDLE_api_secret_key"] = "env-secret";
  auto connection = Resolve();
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ(connection->base_url, "https://other.example.com");
  EXPECT_EQ(connection->api_key_id, "env-key");
  EXPECT_EQ(connection->api_secret_key, "env-secret");
  EXPECT_EQ(connection->tls.mode, TlsMode::kSystemCa);
}

TEST_F(ConnectionTest, ConflictingSpellingsAreRejected) {
  vars_["PUDDLE_URL"] = "https://other.example.com";
  vars_["PUDDLE_API_KEY_ID"] = "one";
  vars_["PUDDLE_api_key_id"] = "two";
  vars_["PUDDLE_API_SECRET_KEY"] = "secret";
  auto connection = Resolve();
  ASSERT_FALSE(connection);
  EXPECT_NE(connection.error().message.find("PUDDLE_API_KEY_ID"), std::string::npos);
  EXPECT_NE(connection.error().message.find("PUDDLE_api_key_id"), std::string::npos);
}

TEST_F(ConnectionTest, HalfAKeyIsRejected) {
  vars_["PUDDLE_URL"] = "https://other.example.com";
  vars_["PUDDLE_API_KEY_ID"] = "one";
  auto connection = Resolve();
  ASSERT_FALSE(connection);
  EXPECT_NE(connection.error().message.find("PUDDLE_API_SECRET_KEY"), std::string::npos);
}

TEST_F(ConnectionTest, NothingConfiguredSaysHowToLogIn) {
  auto connection = Resolve();
  ASSERT_FALSE(connection);
  EXPECT_NE(connection.error().message.find("puddle login"), std::string::npos);
}

TEST_F(ConnectionTest, StoredKeyNeverGoesToAnotherServer) {
  WriteStoredLogin();
  vars_["PUDDLE_URL"] = "https://elsewhere.example.com";
  auto connection = Resolve();
  ASSERT_FALSE(connection);
  EXPECT_NE(connection.error().message.find("https://elsewhere.example.com"), std::string::npos);
  EXPECT_NE(connection.error().message.find("PUDDLE_API_KEY_ID"), std::string::npos);
}

TEST_F(ConnectionTest, CaCertFlagThenEnvironmentThenPin) {
  WriteStoredLogin();
  vars_["PUDDLE_CA_CERT"] = "/env/ca.pem";

  auto from_env = Resolve();
  ASSERT_TRUE(from_env);
  EXPECT_EQ(from_env->tls.mode, TlsMode::kCaFile);
  EXPECT_EQ(from_env->tls.ca_file, "/env/ca.pem");

  auto from_flag = Resolve({.ca_cert = "/flag/ca.pem"});
  ASSERT_TRUE(from_flag);
  EXPECT_EQ(from_flag->tls.mode, TlsMode::kCaFile);
  EXPECT_EQ(from_flag->tls.ca_file, "/flag/ca.pem");

  auto insecure = Resolve({.ca_cert = "/flag/ca.pem", .insecure = true});
  ASSERT_TRUE(insecure);
  EXPECT_EQ(insecure->tls.mode, TlsMode::kInsecure);
}

TEST(NormalizeBaseUrlTest, AcceptsHttpsAndTrimsSlash) {
  EXPECT_EQ(NormalizeBaseUrl("https://Host.example:8443/").value(), "https://host.example:8443");
  EXPECT_EQ(NormalizeBaseUrl("https://127.0.0.1:9443/puddle/").value(),
            "https://127.0.0.1:9443/puddle");
  EXPECT_EQ(NormalizeBaseUrl("https://[::1]:9443").value(), "https://[::1]:9443");
}

TEST(NormalizeBaseUrlTest, RejectsWhatCouldLeakOrMislead) {
  EXPECT_FALSE(NormalizeBaseUrl("http://host:8080"));
  EXPECT_FALSE(NormalizeBaseUrl("https://user:pw@host"));
  EXPECT_FALSE(NormalizeBaseUrl("https://host/?x=1"));
  EXPECT_FALSE(NormalizeBaseUrl("https://host/#top"));
  EXPECT_FALSE(NormalizeBaseUrl("not a url"));
}

TEST(NormalizeFingerprintTest, AcceptsCommonForms) {
  const std::string plain(64, 'a');
  auto from_plain = NormalizeFingerprint(plain);
  ASSERT_TRUE(from_plain);
  EXPECT_EQ(from_plain->size(), 95u);
  EXPECT_EQ(from_plain->substr(0, 6), "AA:AA:");
  EXPECT_EQ(NormalizeFingerprint(std::string("sha256 Fingerprint=") + kPin), kPin);
  EXPECT_EQ(NormalizeFingerprint(std::string("sha256:") + kPin), kPin);
  EXPECT_FALSE(NormalizeFingerprint("AB:CD"));
  EXPECT_FALSE(NormalizeFingerprint(std::string(64, 'g')));
}

}  // namespace
}  // namespace puddle::cli
