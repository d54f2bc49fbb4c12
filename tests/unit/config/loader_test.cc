#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/schema.h"
#include "test_support.h"

namespace puddle {
namespace {

using puddle::testing::ClearConfigEnvironment;
using puddle::testing::ExpectDefaultSettings;
using puddle::testing::ScopedEnvironment;
using puddle::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Returns the 1-based line of the first occurrence of `needle` in `text`.
int LineOf(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

bool HasKeyReport(const Config& config, const std::string& key, const std::string& spelling,
                  const std::string& key_class) {
  for (const ConfigKeyReport& report : config.keys_read) {
    if (report.key == key && report.spelling == spelling && report.key_class == key_class) {
      return true;
    }
  }
  return false;
}

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearConfigEnvironment(environment_);
    path_ = dir_.path() + "/config.yaml";
  }

  // Options that never fall back to the host's /etc/puddle/config.yaml.
  LoadOptions Options(std::string config_path = {}) const {
    LoadOptions options;
    options.config_path = std::move(config_path);
    options.system_config_path = dir_.path() + "/no-system-config.yaml";
    return options;
  }

  Result<Config> Load(const std::string& text) {
    dir_.Write("config.yaml", text);
    return LoadConfig(Options(path_));
  }

  // Loads `text` and returns the error message, failing the test if it loaded.
  std::string LoadError(const std::string& text) {
    auto loaded = Load(text);
    EXPECT_FALSE(loaded.has_value()) << "loaded without error:\n" << text;
    if (loaded.has_value()) return {};
    EXPECT_EQ(loaded.error().code, ErrorCode::kValidationFailed);
    return loaded.error().message;
  }

  std::string At(int line) const { return path_ + ":" + std::to_string(line) + ": "; }

  TempDir dir_;
  ScopedEnvironment environment_;
  std::string path_;
};

TEST_F(ConfigLoaderTest, LocalNetworkKeysRead) {
  auto loaded = Load(
      "providers:\n  local:\n    privateTmp: false\n    network:\n      isolation: false\n"
      "      cidr: 10.99.0.0/20\n      allow: [192.0.2.0/24, 198.51.100.7, pypi.example.org:443]\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_FALSE(loaded->local.network_isolation);
  EXPECT_FALSE(loaded->local.private_tmp);
  EXPECT_EQ(loaded->local.network_cidr, "10.99.0.0/20");
  EXPECT_EQ(loaded->local.network_allow,
            (std::vector<std::string>{"192.0.2.0/24", "198.51.100.7", "pypi.example.org:443"}));

  auto defaults = LoadConfig(Options());
  ASSERT_TRUE(defaults.has_value());
  EXPECT_TRUE(defaults->local.network_isolation);
  EXPECT_TRUE(defaults->local.private_tmp);
  EXPECT_EQ(defaults->local.network_cidr, "10.213.0.0/16");
  EXPECT_TRUE(defaults->local.network_allow.empty());
}

TEST_F(ConfigLoaderTest, LocalNetworkInvalidValuesRejected) {
  for (const char* cidr : {"10.0.0.0/31", "10.0.0.0", "2001:db8::/64", "10.0.0.0/x"}) {
    std::string message =
        LoadError(std::string("providers:\n  local:\n    network:\n      cidr: ") + cidr + "\n");
    EXPECT_NE(message.find("providers.local.network.cidr"), std::string::npos) << message;
  }
  for (const char* entry : {"\"[::1]:80\"", "example.org", "2001:db8::/32", "host:port"}) {
    std::string message = LoadError(
        std::string("providers:\n  local:\n    network:\n      allow: [") + entry + "]\n");
    EXPECT_NE(message.find("providers.local.network.allow"), std::string::npos) << message;
  }
}

TEST_F(ConfigLoaderTest, NoFileMeansDefaults) {
  auto loaded = LoadConfig(Options());
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ExpectDefaultSettings(*loaded);
  EXPECT_EQ(loaded->source_path, "");
  EXPECT_TRUE(loaded->keys_read.empty());
  EXPECT_TRUE(loaded->warnings.empty());
}

TEST_F(ConfigLoaderTest, EmptyMappingMeansDefaults) {
  auto loaded = Load("{}\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ExpectDefaultSettings(*loaded);
  EXPECT_EQ(loaded->source_path, path_);
  EXPECT_TRUE(loaded->keys_read.empty());
}

TEST_F(ConfigLoaderTest, EmptyFileMeansDefaults) {
  auto loaded = Load("");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ExpectDefaultSettings(*loaded);
  EXPECT_EQ(loaded->source_path, path_);
}

TEST_F(ConfigLoaderTest, CommentOnlyFileMeansDefaults) {
  auto loaded = Load("# nothing set yet\n\n# listen: 0.0.0.0:443\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ExpectDefaultSettings(*loaded);
}

TEST_F(ConfigLoaderTest, NullDocumentMeansDefaults) {
  auto loaded = Load("~\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ExpectDefaultSettings(*loaded);
}

TEST_F(ConfigLoaderTest, ReadsEveryUsedKey) {
  std::string cert = dir_.Write("cert.pem", "certificate");
  std::string key = dir_.Write("key.pem", "key");
  auto loaded = Load(
      "dataDir: /var/lib/puddle\n"
      "listen: 0.0.0.0:443\n"
      "tls:\n"
      "  certFile: " +
      cert +
      "\n"
      "  keyFile: " +
      key +
      "\n"
      "auth:\n"
      "  token:\n"
      "    secret: 0123456789abcdef0123456789abcdef\n"
      "  apiKeys:\n"
      "    enabled: false\n"
      "backend:\n"
      "  baseUrl: https://puddle.example.com:8443/\n"
      "connections:\n"
      "  usePublicIP: false\n"
      "proxy:\n"
      "  systemsDomain: Systems.Example.COM\n"
      "trustedProxies: [10.0.0.5, 192.168.0.0/16, '::1']\n"
      "idleTimeout:\n"
      "  options: {15min: 15, Never: -1}\n"
      "  maxKeepAliveMinutes: 90\n"
      "costs:\n"
      "  currency: EUR\n"
      "vmNameRegexp: '^[a-z]+$'\n"
      "workers: 8\n"
      "logs:\n"
      "  level: WARN\n"
      "providers:\n"
      "  local:\n"
      "    enabled: true\n"
      "    uidRange: [300000, 300999]\n"
      "    stopGraceSeconds: 0\n"
      "    listenAddress: 127.0.0.3\n"
      "    portRange: 21000-21999\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  const Config& config = *loaded;
  EXPECT_EQ(config.data_dir, "/var/lib/puddle");
  EXPECT_EQ(config.listen, "0.0.0.0:443");
  EXPECT_EQ(config.tls_cert_file, cert);
  EXPECT_EQ(config.tls_key_file, key);
  EXPECT_EQ(config.token_secret, "0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(config.api_keys_enabled);
  EXPECT_EQ(config.base_url, "https://puddle.example.com:8443");
  EXPECT_FALSE(config.use_public_ip);
  EXPECT_EQ(config.systems_domain, "systems.example.com");
  EXPECT_THAT(config.trusted_proxies, ElementsAre("10.0.0.5", "192.168.0.0/16", "::1"));
  ASSERT_EQ(config.idle_timeout_options.size(), 2u);
  EXPECT_EQ(config.idle_timeout_options[0].label, "15min");
  EXPECT_EQ(config.idle_timeout_options[0].minutes, 15);
  EXPECT_EQ(config.idle_timeout_options[1].label, "Never");
  EXPECT_EQ(config.idle_timeout_options[1].minutes, -1);
  EXPECT_EQ(config.max_keep_alive_minutes, 90);
  EXPECT_EQ(config.currency, "EUR");
  EXPECT_EQ(config.vm_name_regexp, "^[a-z]+$");
  EXPECT_EQ(config.workers, 8);
  EXPECT_EQ(config.log_level, "warning");
  EXPECT_EQ(config.local.enabled, true);
  EXPECT_EQ(config.local.uid_min, 300000);
  EXPECT_EQ(config.local.uid_max, 300999);
  EXPECT_EQ(config.local.stop_grace_seconds, 0);
  EXPECT_EQ(config.local.listen_address, "127.0.0.3");
  EXPECT_EQ(config.local.port_min, 21000);
  EXPECT_EQ(config.local.port_max, 21999);
  EXPECT_FALSE(config.fake_provider_enabled);
  EXPECT_TRUE(config.warnings.empty()) << config.warnings.front();
}

TEST_F(ConfigLoaderTest, IdleTimeoutOptionsKeepDocumentOrder) {
  auto loaded = Load(
      "idleTimeout:\n"
      "  options:\n"
      "    Never: -1\n"
      "    8h: 480\n"
      "    10min: 10\n"
      "    1h: 60\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  const auto& options = loaded->idle_timeout_options;
  ASSERT_EQ(options.size(), 4u);
  EXPECT_EQ(options[0].label, "Never");
  EXPECT_EQ(options[0].minutes, -1);
  EXPECT_EQ(options[1].label, "8h");
  EXPECT_EQ(options[1].minutes, 480);
  EXPECT_EQ(options[2].label, "10min");
  EXPECT_EQ(options[2].minutes, 10);
  EXPECT_EQ(options[3].label, "1h");
  EXPECT_EQ(options[3].minutes, 60);
}

TEST_F(ConfigLoaderTest, IdleTimeoutMinutesMustBePositiveOrNever) {
  std::string message = LoadError(
      "idleTimeout:\n"
      "  options:\n"
      "    1h: 60\n"
      "    broken: -5\n");
  EXPECT_EQ(message, At(4) +
                         "idleTimeout.options.broken: invalid value -5: minutes must be "
                         "positive, or -1 for never");
}

TEST_F(ConfigLoaderTest, IdleTimeoutLabelTwiceIsInvalid) {
  std::string message = LoadError("idleTimeout:\n  options: {1h: 60, 1h: 120}\n");
  EXPECT_EQ(message, At(2) + "idleTimeout.options.1h: label \"1h\" appears twice; keep one");
}

TEST_F(ConfigLoaderTest, UnknownKeyNamesFileLineAndSuggestion) {
  std::string message = LoadError("dataDir: /srv/puddle\nlisen: 0.0.0.0:443\n");
  EXPECT_EQ(message, At(2) + "lisen: unknown key; did you mean listen?");
}

TEST_F(ConfigLoaderTest, UnknownNestedKeySuggestsSibling) {
  std::string message = LoadError(
      "providers:\n"
      "  local:\n"
      "    uidRnage: 300000-300999\n");
  EXPECT_EQ(message, At(3) +
                         "providers.local.uidRnage: unknown key; did you mean "
                         "providers.local.uidRange?");
}

TEST_F(ConfigLoaderTest, UnknownSectionSuggestsSection) {
  std::string message = LoadError("redsi:\n  connections:\n    address: localhost:6379\n");
  EXPECT_EQ(message, At(1) + "redsi: unknown key; did you mean redis?");
}

TEST_F(ConfigLoaderTest, MisplacedSectionSuggestsItsPlace) {
  std::string message = LoadError("aws:\n  enabled: false\n");
  EXPECT_EQ(message, At(1) + "aws: unknown key; did you mean providers.aws?");
}

TEST_F(ConfigLoaderTest, UnknownKeyFarFromAnyGetsNoSuggestion) {
  std::string message = LoadError("frobnicate: 1\n");
  EXPECT_EQ(message, At(1) + "frobnicate: unknown key");
}

TEST_F(ConfigLoaderTest, UnknownKeyInRefusedPartIsAnError) {
  std::string message = LoadError("auth:\n  ldap:\n    enabled: false\n    hots: ldap\n");
  EXPECT_EQ(message, At(4) + "auth.ldap.hots: unknown key; did you mean auth.ldap.host?");
}

TEST_F(ConfigLoaderTest, WrongTypeNamesExpectedType) {
  EXPECT_EQ(LoadError("workers: many\n"), At(1) + "workers: expected an integer, got \"many\"");
  EXPECT_EQ(LoadError("auth:\n  apiKeys:\n    enabled: maybe\n"),
            At(3) + "auth.apiKeys.enabled: expected true or false, got \"maybe\"");
  EXPECT_EQ(LoadError("listen: [a, b]\n"), At(1) + "listen: expected a string, got a list");
  EXPECT_EQ(LoadError("trustedProxies: 10.0.0.1\n"),
            At(1) +
                "trustedProxies: expected a list of strings, such as [a, b], got "
                "\"10.0.0.1\"");
  EXPECT_EQ(LoadError("idleTimeout:\n  options: [30, 60]\n"),
            At(2) +
                "idleTimeout.options: expected a mapping of label: minutes, such as "
                "{1h: 60, Never: -1}, got a list");
  EXPECT_EQ(LoadError("tls: yes\n"), At(1) + "tls: expected a mapping of keys, got \"yes\"");
}

TEST_F(ConfigLoaderTest, InvalidValueSaysWhy) {
  EXPECT_EQ(LoadError("costs:\n  currency: usd\n"),
            At(2) +
                "costs.currency: invalid value \"usd\": expected an ISO 4217 code of 3 "
                "upper-case letters, such as USD or EUR");
  EXPECT_EQ(LoadError("listen: 8443\n"),
            At(1) +
                "listen: invalid value \"8443\": expected host:port, such as "
                "127.0.0.1:8443, 0.0.0.0:443 or [::1]:8443");
  EXPECT_EQ(LoadError("logs:\n  level: verbose\n"),
            At(2) +
                "logs.level: invalid value \"verbose\": expected trace, debug, info, warn, "
                "warning or error");
  EXPECT_EQ(LoadError("workers: 0\n"), At(1) + "workers: invalid value 0: must be positive");
  EXPECT_EQ(LoadError("trustedProxies:\n  - 10.0.0.1\n  - 10.0.0.300\n"),
            At(3) +
                "trustedProxies[1]: invalid value \"10.0.0.300\": expected an IP address or "
                "CIDR range such as 10.0.0.5 or 10.0.0.0/8");
}

TEST_F(ConfigLoaderTest, BaseUrlIsHttpOriginOnly) {
  EXPECT_THAT(LoadError("backend:\n  baseUrl: ftp://puddle.example.com\n"),
              HasSubstr(At(2) + "backend.baseUrl: invalid value \"ftp://puddle.example.com\": "
                                "the scheme must be https or http"));
  EXPECT_THAT(LoadError("backend:\n  baseUrl: puddle.example.com\n"),
              HasSubstr(At(2) + "backend.baseUrl: invalid value"));
  EXPECT_THAT(LoadError("backend:\n  baseUrl: https://puddle.example.com/puddle\n"),
              HasSubstr("with no path, query or fragment"));
  EXPECT_EQ(LoadError("backend:\n  baseUrl: https://puddle.example.com:99999\n"),
            At(2) + "backend.baseUrl: invalid value \"https://puddle.example.com:99999\": the "
                    "port must be between 1 and 65535");
  EXPECT_EQ(LoadError("backend:\n  baseUrl: https://admin:pw@puddle.example.com\n"),
            At(2) + "backend.baseUrl: invalid value \"https://admin:pw@puddle.example.com\": "
                    "the URL must not contain a user name or password");

  auto loaded = Load("backend:\n  baseUrl: http://127.0.0.1:8080\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->base_url, "http://127.0.0.1:8080");
}

TEST_F(ConfigLoaderTest, VmNameRegexpMustCompile) {
  std::string message = LoadError("vmNameRegexp: '([a-z'\n");
  EXPECT_THAT(message, HasSubstr(At(1) + "vmNameRegexp: invalid value \"([a-z\": not a valid "
                                         "regular expression"));
}

TEST_F(ConfigLoaderTest, RangesAcceptStringOrPair) {
  auto loaded = Load(
      "providers:\n  local:\n    uidRange: 400000 - 400010\n"
      "    portRange: [22000, 22010]\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->local.uid_min, 400000);
  EXPECT_EQ(loaded->local.uid_max, 400010);
  EXPECT_EQ(loaded->local.port_min, 22000);
  EXPECT_EQ(loaded->local.port_max, 22010);

  EXPECT_THAT(
      LoadError("providers:\n  local:\n    uidRange: 0-100\n"),
      HasSubstr(At(3) + "providers.local.uidRange: invalid value \"0-100\": uid 0 is root"));
  EXPECT_EQ(LoadError("providers:\n  local:\n    portRange: 30000-20000\n"),
            At(3) +
                "providers.local.portRange: invalid range 30000-20000: min is larger than "
                "max");
  EXPECT_EQ(LoadError("providers:\n  local:\n    portRange: [1, 2, 3]\n"),
            At(3) + "providers.local.portRange: expected \"min-max\" or [min, max], got a list");
}

TEST_F(ConfigLoaderTest, TraceLogLevelMapsToDebug) {
  auto loaded = Load("logs:\n  level: trace\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->log_level, "debug");
}

TEST_F(ConfigLoaderTest, EmptyValueKeepsDefault) {
  auto loaded = Load("listen:\nworkers: ~\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->listen, Config().listen);
  EXPECT_EQ(loaded->workers, Config().workers);
  EXPECT_TRUE(HasKeyReport(*loaded, "listen", "listen", "used"));
}

TEST_F(ConfigLoaderTest, ReportsEveryProblemAtOnce) {
  std::string message = LoadError("workers: -1\nlisen: x\ncosts:\n  currency: euro\n");
  EXPECT_EQ(message, At(2) + "lisen: unknown key; did you mean listen?\n" + At(1) +
                         "workers: invalid value -1: must be positive\n" + At(4) +
                         "costs.currency: invalid value \"euro\": expected an ISO 4217 "
                         "code of 3 upper-case letters, such as USD or EUR");
}

TEST_F(ConfigLoaderTest, ErrorFieldIsFirstProblemKey) {
  auto loaded = Load("workers: -1\n");
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().field, "workers");
}

TEST_F(ConfigLoaderTest, YamlSyntaxErrorNamesFileAndLine) {
  std::string message = LoadError("dataDir: /srv\ntrustedProxies: [10.0.0.1\nworkers: 3\n");
  EXPECT_THAT(message, HasSubstr(path_ + ":"));
  EXPECT_THAT(message, HasSubstr("invalid YAML"));
  EXPECT_THAT(message, ::testing::StartsWith(path_ + ":"));
  // yaml-cpp reports the flow sequence's end at the line where it gave up.
  EXPECT_THAT(message, ::testing::ContainsRegex("^" + path_ + ":[34]: invalid YAML: "));
}

TEST_F(ConfigLoaderTest, BadIndentationNamesLine) {
  std::string message = LoadError("dataDir: /srv\nlisten: a: b\n");
  EXPECT_EQ(message, At(2) + "invalid YAML: illegal map value (column 10)");
}

TEST_F(ConfigLoaderTest, DeeplyNestedInputIsAnError) {
  std::string nested = std::string(100000, '[') + std::string(100000, ']');
  std::string message = LoadError("trustedProxies: " + nested + "\n");
  EXPECT_THAT(message, ::testing::StartsWith(At(1) + "invalid YAML: "));
}

TEST_F(ConfigLoaderTest, SeveralDocumentsAreRejected) {
  std::string message = LoadError("workers: 2\n---\nworkers: 3\n");
  EXPECT_EQ(message, At(3) +
                         "the file holds 2 YAML documents; Puddle reads one, so remove the "
                         "others");
}

TEST_F(ConfigLoaderTest, TopLevelMustBeMapping) {
  EXPECT_EQ(LoadError("- dataDir\n"),
            At(1) + "expected a mapping of keys at the top level, got a list");
}

TEST_F(ConfigLoaderTest, TwoSpellingsOfOneKeyNameBothLines) {
  std::string message = LoadError(
      "backend:\n"
      "  baseUrl: https://a.example.com\n"
      "workers: 2\n"
      "  \n"
      "backend.baseURL: https://b.example.com\n");
  EXPECT_EQ(message, At(5) +
                         "backend.baseURL: also set as backend.baseUrl at line 2; both are "
                         "spellings of backend.baseUrl, so keep one");
}

TEST_F(ConfigLoaderTest, OriginalAndPuddleSpellingsOfWorkersConflict) {
  std::string message = LoadError("redis:\n  workersCount: 10\nworkers: 4\n");
  EXPECT_EQ(message, At(3) +
                         "workers: also set as redis.workersCount at line 2; both are "
                         "spellings of workers, so keep one");
}

TEST_F(ConfigLoaderTest, BothRedisSectionSpellingsConflict) {
  std::string message = LoadError(
      "redis:\n"
      "  connections:\n"
      "    protocol: tcp\n"
      "  connection:\n"
      "    tls: false\n");
  EXPECT_EQ(message, At(4) +
                         "redis.connection: also written as redis.connections at line 2, "
                         "and redis.connection at line 4 is another spelling of it; merge "
                         "them into one redis.connections section");
}

TEST_F(ConfigLoaderTest, KeySetTwiceInOneMappingNamesBothLines) {
  std::string message = LoadError("workers: 2\ndataDir: /a\nworkers: 3\n");
  EXPECT_EQ(message, At(3) + "workers: set twice in the same mapping, at lines 1 and 3; keep one");
}

TEST_F(ConfigLoaderTest, DocumentedAlternativeSpellingsLoad) {
  auto loaded = Load(
      "redis:\n"
      "  connection:\n"
      "    protocol: tcp\n"
      "  workersCount: 6\n"
      "auth:\n"
      "  apiKeys:\n"
      "    enable: false\n"
      "backend:\n"
      "  baseURL: https://puddle.example.com\n"
      "  connections:\n"
      "    usePublicIp: false\n"
      "proxy:\n"
      "  systemsDomain: systems.example.net\n"
      "providers:\n"
      "  aws:\n"
      "    enable: false\n"
      "    pcId: vpc-1\n"
      "    sgId: sg-1\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->workers, 6);
  EXPECT_FALSE(loaded->api_keys_enabled);
  EXPECT_EQ(loaded->base_url, "https://puddle.example.com");
  EXPECT_FALSE(loaded->use_public_ip);
  EXPECT_TRUE(
      HasKeyReport(*loaded, "redis.connections.protocol", "redis.connection.protocol", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "workers", "redis.workersCount", "used"));
  EXPECT_TRUE(HasKeyReport(*loaded, "auth.apiKeys.enabled", "auth.apiKeys.enable", "used"));
  EXPECT_TRUE(HasKeyReport(*loaded, "backend.baseUrl", "backend.baseURL", "used"));
  EXPECT_TRUE(
      HasKeyReport(*loaded, "connections.usePublicIP", "backend.connections.usePublicIp", "used"));
  EXPECT_TRUE(HasKeyReport(*loaded, "providers.aws.enabled", "providers.aws.enable", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "providers.aws.vpcId", "providers.aws.pcId", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "providers.aws.sgIds", "providers.aws.sgId", "ignored"));
}

// A value of `type` that loads without error for a key no other key depends on.
std::string HarmlessValue(const config::KeyDefinition& key) {
  if (key.key_class == config::KeyClass::kUsed) {
    if (!key.default_value.empty()) return std::string(key.default_value);
    return std::string(key.example);
  }
  switch (key.type) {
    case config::ValueType::kBool: return "false";
    case config::ValueType::kInt: return "1";
    case config::ValueType::kStringList: return "[]";
    case config::ValueType::kStringMap:
    case config::ValueType::kLabelMinutesMap: return "{}";
    default: return "''";
  }
}

// Writes a dotted key as nested YAML mappings.
std::string NestedYaml(const std::string& spelling, const std::string& value) {
  std::string yaml;
  std::string indent;
  size_t start = 0;
  for (size_t dot = spelling.find('.'); dot != std::string::npos; dot = spelling.find('.', start)) {
    yaml += indent + spelling.substr(start, dot - start) + ":\n";
    indent += "  ";
    start = dot + 1;
  }
  return yaml + indent + spelling.substr(start) + ": " + value + "\n";
}

TEST_F(ConfigLoaderTest, EveryAlternativeSpellingMapsToItsKey) {
  size_t checked = 0;
  for (const config::PartDefinition& part : config::ConfigParts()) {
    for (const config::KeyDefinition& key : part.keys) {
      for (const std::string& spelling : key.spellings) {
        auto loaded = Load(NestedYaml(spelling, HarmlessValue(key)));
        ASSERT_TRUE(loaded.has_value()) << spelling << ": " << loaded.error().message;
        ASSERT_EQ(loaded->keys_read.size(), 1u) << spelling;
        EXPECT_EQ(loaded->keys_read[0].key, key.key);
        EXPECT_EQ(loaded->keys_read[0].spelling, spelling);
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 25u);
}

TEST_F(ConfigLoaderTest, RefusedPartSwitchedOffIsIgnored) {
  auto loaded = Load(
      "auth:\n"
      "  ldap:\n"
      "    enabled: false\n"
      "    host: ldap.example.com\n"
      "    bindPassword: ldap-secret-never-shown\n"
      "mailing:\n"
      "  enable: false\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_TRUE(HasKeyReport(*loaded, "auth.ldap.enabled", "auth.ldap.enabled", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "auth.ldap.host", "auth.ldap.host", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "mailing.enabled", "mailing.enable", "ignored"));
  EXPECT_THAT(loaded->warnings,
              ElementsAre(At(3) + "auth.ldap.*: ignored because auth.ldap.enabled is not true, "
                                  "and Puddle does not have LDAP login yet",
                          At(7) + "mailing.*: ignored because mailing.enabled is not true, and "
                                  "Puddle does not have mail notifications yet"));
  EXPECT_THAT(FormatConfigCheck(*loaded), Not(HasSubstr("ldap-secret-never-shown")));
}

TEST_F(ConfigLoaderTest, RefusedPartSwitchedOnFails) {
  EXPECT_EQ(LoadError("mailing:\n  enabled: true\n  server: smtp.example.com:25\n"),
            At(2) +
                "mailing.enabled: mail notifications are not built yet; set mailing.enabled "
                "to false, or remove mailing");
  EXPECT_EQ(LoadError("auth:\n  oidc:\n    enabled: false\n    clientBearerTokenAuth:\n"
                      "      enable: yes\n"),
            At(5) +
                "auth.oidc.clientBearerTokenAuth.enable: OpenID Connect bearer tokens for "
                "API clients are not built yet; set auth.oidc.clientBearerTokenAuth.enabled "
                "to false, and use API keys (auth.apiKeys.enabled) meanwhile");
  EXPECT_EQ(LoadError("auth:\n  ldap:\n    enabled: sometimes\n"),
            At(3) + "auth.ldap.enabled: expected true or false, got \"sometimes\"");
}

TEST_F(ConfigLoaderTest, RedisWithoutAddressIsIgnored) {
  auto loaded = Load("redis:\n  connections:\n    protocol: tcp\n    address: ''\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_TRUE(
      HasKeyReport(*loaded, "redis.connections.address", "redis.connections.address", "ignored"));
}

TEST_F(ConfigLoaderTest, RedisAddressSelectsRedisQueue) {
  auto loaded = Load(
      "redis:\n  connection:\n    protocol: tcp\n    address: 127.0.0.1:6379\n"
      "    password: redis-secret-value\n    tls: false\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_TRUE(loaded->redis.Enabled());
  EXPECT_EQ(loaded->redis.address, "127.0.0.1:6379");
  EXPECT_EQ(loaded->redis.password, "redis-secret-value");
  EXPECT_TRUE(
      HasKeyReport(*loaded, "redis.connections.address", "redis.connection.address", "used"));
  EXPECT_EQ(FormatConfigCheck(*loaded).find("redis-secret-value"), std::string::npos);
}

TEST_F(ConfigLoaderTest, RedisTlsIsRejectedWithReason) {
  std::string message =
      LoadError("redis:\n  connections:\n    address: 127.0.0.1:6379\n    tls: true\n");
  EXPECT_THAT(message, HasSubstr("redis.connections.tls: true is not supported"));
  EXPECT_THAT(message, HasSubstr("set tls: false"));
}

TEST_F(ConfigLoaderTest, RedisProtocolMustBeTcpOrUnix) {
  std::string message =
      LoadError("redis:\n  connections:\n    address: 127.0.0.1:6379\n    protocol: udp\n");
  EXPECT_THAT(message, HasSubstr("redis.connections.protocol: invalid value \"udp\""));
}

TEST_F(ConfigLoaderTest, IgnoredPartsWarnWithReason) {
  auto loaded = Load(
      "license:\n"
      "  file: /opt/h2oai/puddle/license.sig\n"
      "packer:\n"
      "  path: /opt/h2oai/puddle/deps/packer\n"
      "  someFutureKey: 3\n"
      "logs:\n"
      "  level: info\n"
      "  dir: /var/log/puddle\n"
      "  maxAge: 60\n"
      "http_proxy: http://user:proxy-password@proxy.example.com:3128\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_TRUE(HasKeyReport(*loaded, "license.file", "license.file", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "packer.path", "packer.path", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "packer.someFutureKey", "packer.someFutureKey", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "logs.level", "logs.level", "used"));
  EXPECT_TRUE(HasKeyReport(*loaded, "logs.dir", "logs.dir", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "http_proxy", "http_proxy", "ignored"));
  EXPECT_THAT(
      loaded->warnings,
      ElementsAre(At(2) + "license.file: ignored: Puddle needs no license file",
                  At(4) + "packer.*: ignored: Puddle does not build images with Packer",
                  At(8) + "logs.dir, logs.maxAge: ignored: Puddle logs to standard error (the "
                          "journal under systemd), which stores and rotates the log; only "
                          "logs.level applies",
                  At(10) + "http_proxy: ignored: nothing Puddle has built yet sends requests "
                           "beyond this host, so it has no use for a proxy; the AWS provider "
                           "and mail, which will, are not built yet"));
  EXPECT_THAT(FormatConfigCheck(*loaded), Not(HasSubstr("proxy-password")));
}

TEST_F(ConfigLoaderTest, TlsNeedsBothFiles) {
  std::string cert = dir_.Write("cert.pem", "certificate");
  EXPECT_EQ(LoadError("tls:\n  certFile: " + cert + "\n"),
            At(2) +
                "tls.certFile: tls.keyFile is not set; set both tls keys, or neither to use "
                "a generated self-signed certificate");
  EXPECT_EQ(LoadError("tls:\n  keyFile: " + cert + "\n"),
            At(2) +
                "tls.keyFile: tls.certFile is not set; set both tls keys, or neither to use "
                "a generated self-signed certificate");
}

TEST_F(ConfigLoaderTest, TlsFileMustExist) {
  std::string missing = dir_.path() + "/missing.pem";
  std::string key = dir_.Write("key.pem", "key");
  EXPECT_EQ(LoadError("tls:\n  certFile: " + missing + "\n  keyFile: " + key + "\n"),
            At(2) + "tls.certFile: cannot use \"" + missing + "\": No such file or directory");
}

TEST_F(ConfigLoaderTest, FakeProviderWarnsAndStandsAlone) {
  auto loaded = Load("providers:\n  fake:\n    enabled: true\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_TRUE(loaded->fake_provider_enabled);
  EXPECT_THAT(loaded->warnings,
              ElementsAre(At(3) + "providers.fake.enabled: the fake provider is on: systems are "
                                  "simulated and run nothing; use it only for tests and "
                                  "benchmarks"));

  EXPECT_EQ(LoadError("providers:\n  local:\n    enabled: true\n  fake:\n    enabled: true\n"),
            At(5) +
                "providers.fake.enabled: cannot be combined with providers.local.enabled: "
                "true (line 3); the fake provider must be the only one enabled");
}

TEST_F(ConfigLoaderTest, ProductsCannotListenWherePuddleListens) {
  EXPECT_EQ(LoadError("listen: 127.0.0.2:8443\n"),
            At(1) +
                "listen: its host is providers.local.listenAddress (127.0.0.2), where local "
                "products listen; serve Puddle on another address, or move the products "
                "with providers.local.listenAddress");
  EXPECT_EQ(LoadError("listen: 127.0.0.5:8443\nproviders:\n  local:\n"
                      "    listenAddress: 127.0.0.5\n"),
            At(4) +
                "providers.local.listenAddress: equals the host Puddle listens on (listen: "
                "127.0.0.5:8443); products need an address Puddle is not served on");
}

TEST_F(ConfigLoaderTest, SystemsDomainMustNotContainPuddleHost) {
  EXPECT_EQ(LoadError("backend:\n  baseUrl: https://puddle.example.com\n"
                      "proxy:\n  systemsDomain: example.com\n"),
            At(4) +
                "proxy.systemsDomain: \"example.com\" is Puddle's host puddle.example.com or "
                "a parent of it, so system pages would share Puddle's cookies; use a domain "
                "outside Puddle's host, such as systems-puddle.example.com");
}

TEST_F(ConfigLoaderTest, SystemsDomainMustNotBeLocalhostWithoutBaseUrl) {
  EXPECT_EQ(LoadError("proxy:\n  systemsDomain: localhost\n"),
            At(2) +
                "proxy.systemsDomain: \"localhost\" is Puddle's host localhost or a parent of "
                "it, so system pages would share Puddle's cookies; use a domain outside "
                "Puddle's host, such as systems-puddle.example.com");
}

TEST_F(ConfigLoaderTest, LoopbackSystemsDomainWarnsWhenReachedFromOtherHosts) {
  auto loaded = Load("listen: 0.0.0.0:443\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_THAT(loaded->warnings[0], HasSubstr("proxy.systemsDomain: \"systems.localhost\" "
                                             "resolves only on this host"));
}

TEST_F(ConfigLoaderTest, SecretsNeverAppearInMessages) {
  const std::string secret = "short-secret";
  std::string message = LoadError("auth:\n  token:\n    secret: " + secret + "\n");
  EXPECT_EQ(message, At(3) +
                         "auth.token.secret: too short (12 characters, at least 16 needed); "
                         "generate one with `openssl rand -hex 32`, or remove the key to let "
                         "Puddle generate and store one");
  EXPECT_THAT(message, Not(HasSubstr(secret)));

  std::string typed = LoadError("auth:\n  token:\n    secret: [list-secret-value]\n");
  EXPECT_EQ(typed, At(3) + "auth.token.secret: expected a string, got a list");

  auto loaded = Load("auth:\n  token:\n    secret: a-long-enough-secret-value-1234\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_THAT(FormatConfigCheck(*loaded), Not(HasSubstr("a-long-enough-secret-value-1234")));
}

TEST_F(ConfigLoaderTest, FormatConfigCheckListsKeysThenWarnings) {
  auto loaded = Load(
      "workers: 3\nbackend:\n  baseURL: https://localhost:8443\n"
      "license:\n  file: /x\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(FormatConfigCheck(*loaded),
            "workers\tworkers\tused\n"
            "backend.baseUrl\tbackend.baseURL\tused\n"
            "license.file\tlicense.file\tignored\n"
            "warning: " +
                At(5) + "license.file: ignored: Puddle needs no license file\n");
}

// The production config of the original product's AWS setup guide.
std::string SeedConfig(const std::string& cert, const std::string& key, bool with_unbuilt_parts) {
  std::string yaml;
  if (with_unbuilt_parts) {
    yaml +=
        "redis:\n"
        "  connections:\n"
        "    protocol: tcp\n"
        "    address: xxxxxxxxxxx.cac1.cache.amazonaws.com:6379\n"
        "    password: redis-password-never-shown\n"
        "    tls: false\n";
  }
  yaml +=
      "db:\n"
      "  connection:\n"
      "    drivername: postgres\n"
      "    host: xxxxxxxxxxx.ca-central-1.rds.amazonaws.com\n"
      "    port: 5432\n"
      "    user: puddle\n"
      "    dbname: puddle\n"
      "    sslmode: require\n"
      "    password: rds-password-never-shown\n";
  yaml +=
      "tls:\n"
      "  certFile: " +
      cert +
      "\n"
      "  keyFile: " +
      key +
      "\n"
      "license:\n"
      "  file: /opt/h2oai/puddle/license.sig\n"
      "auth:\n"
      "  token:\n"
      "    secret: Zx8Qk2Lm9Pw4Rt7Yv1Bn6Cd3Fg5Hj0Ks\n";
  if (with_unbuilt_parts) {
    yaml +=
        "  awsCognito:\n"
        "    enable: true\n"
        "    userPoolId: us-east-1_xxxxxx\n"
        "    userPoolWebClientId: 1example23456789\n"
        "    domain: puddle-example\n"
        "    redirectSignIn: https://203.0.113.10/aws-cognito-callback\n"
        "    redirectSignOut: https://203.0.113.10/logout\n"
        "    adminsGroup: Administrators\n"
        "    usersGroup: Users\n"
        "    implicitGrant: false\n";
  }
  yaml +=
      "backend:\n"
      "  baseUrl: https://203.0.113.10\n"
      "connections:\n"
      "  usePublicIP: true\n";
  if (with_unbuilt_parts) {
    yaml +=
        "providers:\n"
        "  aws:\n"
        "    enabled: true\n"
        "    owner: '123456789012'\n"
        "    pcId: vpc-0example\n"
        "    sgId: sg-0example\n"
        "    subnetId: subnet-0example\n"
        "    publicIpEnabled: true\n"
        "    packerInstanceType:\n"
        "    metadataEndpointIAMRole: http://169.254.169.254/latest/meta-data/iam/info\n"
        "    suppressIAMRoleCheck: false\n";
  }
  yaml +=
      "mailing:\n"
      "  enabled: false\n";
  return yaml;
}

TEST_F(ConfigLoaderTest, SeedProductionConfigIsRefusedNamingUnbuiltParts) {
  std::string cert = dir_.Write("cert.pem", "certificate");
  std::string key = dir_.Write("private_key.pem", "key");
  std::string text = SeedConfig(cert, key, true);
  std::string message = LoadError(text);

  EXPECT_EQ(message,
            At(LineOf(text, "enable: true")) +
                "auth.awsCognito.enable: AWS Cognito login is not built yet; set "
                "auth.awsCognito.enabled to false, or remove auth.awsCognito, to sign in with "
                "Puddle's own accounts\n" +
                At(LineOf(text, "enabled: true")) +
                "providers.aws.enabled: the AWS provider is not built yet; set "
                "providers.aws.enabled to false, or remove providers.aws, to run systems on "
                "this host with the local provider");
  EXPECT_THAT(message, Not(HasSubstr("mailing")));
  EXPECT_THAT(message, Not(HasSubstr("redis-password-never-shown")));
  EXPECT_THAT(message, Not(HasSubstr("rds-password-never-shown")));
  EXPECT_THAT(message, Not(HasSubstr("Zx8Qk2Lm9Pw4Rt7Yv1Bn6Cd3Fg5Hj0Ks")));

  // `config check` still lists what it read, refused keys included, without values.
  ConfigInspection inspection = InspectConfig(Options(path_));
  ASSERT_TRUE(inspection.error.has_value());
  std::string check = FormatConfigCheck(inspection.config);
  EXPECT_THAT(check,
              HasSubstr("redis.connections.password\tredis.connections.password\tused\n"));
  EXPECT_THAT(check, HasSubstr("db.connection.drivername\tdb.connection.drivername\tused\n"));
  EXPECT_THAT(check, HasSubstr("db.connection.password\tdb.connection.password\tused\n"));
  EXPECT_THAT(check, HasSubstr("providers.aws.vpcId\tproviders.aws.pcId\trefused\n"));
  EXPECT_THAT(check, HasSubstr("auth.awsCognito.enabled\tauth.awsCognito.enable\trefused\n"));
  EXPECT_THAT(check, HasSubstr("mailing.enabled\tmailing.enabled\tignored\n"));
  EXPECT_THAT(check, HasSubstr("license.file\tlicense.file\tignored\n"));
  EXPECT_THAT(check, HasSubstr("auth.token.secret\tauth.token.secret\tused\n"));
  EXPECT_THAT(check, Not(HasSubstr("redis-password-never-shown")));
  EXPECT_THAT(check, Not(HasSubstr("rds-password-never-shown")));
  EXPECT_THAT(check, Not(HasSubstr("Zx8Qk2Lm9Pw4Rt7Yv1Bn6Cd3Fg5Hj0Ks")));
}

TEST_F(ConfigLoaderTest, SeedProductionConfigLoadsWithoutUnbuiltParts) {
  std::string cert = dir_.Write("cert.pem", "certificate");
  std::string key = dir_.Write("private_key.pem", "key");
  std::string text = SeedConfig(cert, key, false);
  auto loaded = Load(text);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;

  // The guide's PostgreSQL, as libpq gets it.
  EXPECT_EQ(loaded->database.driver, "postgres");
  EXPECT_TRUE(loaded->database.IsPostgres());
  EXPECT_EQ(loaded->database.host, "xxxxxxxxxxx.ca-central-1.rds.amazonaws.com");
  EXPECT_EQ(loaded->database.port, 5432);
  EXPECT_EQ(loaded->database.user, "puddle");
  EXPECT_EQ(loaded->database.dbname, "puddle");
  EXPECT_EQ(loaded->database.sslmode, "require");
  EXPECT_EQ(loaded->database.password, "rds-password-never-shown");
  EXPECT_TRUE(HasKeyReport(*loaded, "db.connection.host", "db.connection.host", "used"));
  EXPECT_THAT(FormatConfigCheck(*loaded), Not(HasSubstr("rds-password-never-shown")));

  EXPECT_EQ(loaded->tls_cert_file, cert);
  EXPECT_EQ(loaded->tls_key_file, key);
  EXPECT_EQ(loaded->token_secret, "Zx8Qk2Lm9Pw4Rt7Yv1Bn6Cd3Fg5Hj0Ks");
  EXPECT_EQ(loaded->base_url, "https://203.0.113.10");
  EXPECT_TRUE(loaded->use_public_ip);
  EXPECT_TRUE(HasKeyReport(*loaded, "license.file", "license.file", "ignored"));
  EXPECT_TRUE(HasKeyReport(*loaded, "mailing.enabled", "mailing.enabled", "ignored"));
  EXPECT_THAT(loaded->warnings,
              ::testing::Contains(At(LineOf(text, "file:")) +
                                  "license.file: ignored: Puddle needs no license file"));
  // The guide reaches Puddle by IP address, so the default systems domain
  // cannot serve browsers on other hosts.
  EXPECT_THAT(loaded->warnings,
              ::testing::Contains(HasSubstr("proxy.systemsDomain: \"systems.localhost\"")));
  for (const std::string& warning : loaded->warnings) {
    EXPECT_THAT(warning, Not(HasSubstr("Zx8Qk2Lm9Pw4Rt7Yv1Bn6Cd3Fg5Hj0Ks")));
    EXPECT_THAT(warning, Not(HasSubstr("rds-password-never-shown")));
    EXPECT_THAT(warning, Not(HasSubstr("db.connection")));
  }
}

TEST_F(ConfigLoaderTest, DatabaseDefaultsToSqlite) {
  auto loaded = Load("workers: 2\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->database.driver, "sqlite");
  EXPECT_FALSE(loaded->database.IsPostgres());

  loaded = Load("db:\n  connection:\n    drivername: sqlite\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_FALSE(loaded->database.IsPostgres());
  EXPECT_TRUE(loaded->warnings.empty());
  EXPECT_TRUE(HasKeyReport(*loaded, "db.connection.drivername", "db.connection.drivername",
                           "used"));
}

TEST_F(ConfigLoaderTest, PostgresKeysTakeDefaults) {
  auto loaded = Load(
      "db:\n  connection:\n    drivername: postgres\n    host: 10.0.0.5\n"
      "    user: puddle\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_TRUE(loaded->database.IsPostgres());
  EXPECT_EQ(loaded->database.host, "10.0.0.5");
  EXPECT_EQ(loaded->database.port, 5432);
  EXPECT_EQ(loaded->database.dbname, "puddle");
  EXPECT_EQ(loaded->database.sslmode, "require");
  EXPECT_EQ(loaded->database.password, "");
  EXPECT_TRUE(loaded->warnings.empty());
}

TEST_F(ConfigLoaderTest, PostgresNeedsHostAndUser) {
  std::string text = "db:\n  connection:\n    drivername: postgres\n";
  EXPECT_EQ(LoadError(text),
            At(3) +
                "db.connection.host: missing; set the PostgreSQL server's host name or IP "
                "address, or set db.connection.drivername to sqlite for the embedded store\n" +
                At(3) + "db.connection.user: missing; set the PostgreSQL user Puddle connects as");
}

TEST_F(ConfigLoaderTest, UnknownDriverNamesLine) {
  std::string text = "db:\n  connection:\n    host: db.example.com\n    drivername: mysql\n";
  EXPECT_EQ(LoadError(text), At(4) +
                                 "db.connection.drivername: invalid value \"mysql\": expected "
                                 "postgres, or sqlite for the embedded store under dataDir");
}

TEST_F(ConfigLoaderTest, InvalidPostgresValuesNameKeys) {
  const std::string secret = "pg-password-never-shown";
  std::string text =
      "db:\n"
      "  connection:\n"
      "    drivername: postgres\n"
      "    host: 'db host'\n"
      "    port: 70000\n"
      "    user: ''\n"
      "    dbname: ''\n"
      "    sslmode: required\n"
      "    password: [" + secret + "]\n";
  std::string message = LoadError(text);
  EXPECT_THAT(message, HasSubstr(At(4) + "db.connection.host: invalid value \"db host\": "
                                         "expected one host name or IP address"));
  EXPECT_THAT(message, HasSubstr(At(5) + "db.connection.port: invalid value 70000: expected a "
                                         "port between 1 and 65535"));
  EXPECT_THAT(message, HasSubstr(At(6) + "db.connection.user: must not be empty"));
  EXPECT_THAT(message, HasSubstr(At(7) + "db.connection.dbname: must not be empty"));
  EXPECT_THAT(message,
              HasSubstr(At(8) + "db.connection.sslmode: invalid value \"required\": expected "
                                "disable, allow, prefer, require, verify-ca or verify-full"));
  EXPECT_THAT(message, HasSubstr(At(9) + "db.connection.password: expected a string, got a list"));
  EXPECT_THAT(message, Not(HasSubstr(secret)));
}

TEST_F(ConfigLoaderTest, SslModesOfLibpqAccepted) {
  for (const char* mode : {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}) {
    auto loaded = Load(std::string("db:\n  connection:\n    drivername: postgres\n"
                                   "    host: db.example.com\n    user: puddle\n    sslmode: ") +
                       mode + "\n");
    ASSERT_TRUE(loaded.has_value()) << mode << ": " << loaded.error().message;
    EXPECT_EQ(loaded->database.sslmode, mode);
  }
}

TEST_F(ConfigLoaderTest, PostgresKeysIgnoredWithoutDriver) {
  const std::string secret = "pg-password-never-shown";
  std::string text =
      "db:\n  connection:\n    host: db.example.com\n    port: 6543\n    password: " + secret +
      "\n";
  auto loaded = Load(text);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_FALSE(loaded->database.IsPostgres());
  EXPECT_EQ(loaded->database.host, "");
  EXPECT_EQ(loaded->database.port, 5432);
  EXPECT_EQ(loaded->database.password, "");
  EXPECT_THAT(loaded->warnings,
              ElementsAre(At(3) +
                          "db.connection.*: ignored because db.connection.drivername is not "
                          "postgres, so Puddle uses the embedded SQLite store under dataDir, "
                          "which allows one Puddle process"));
  EXPECT_TRUE(HasKeyReport(*loaded, "db.connection.host", "db.connection.host", "ignored"));
  EXPECT_TRUE(
      HasKeyReport(*loaded, "db.connection.password", "db.connection.password", "ignored"));
  EXPECT_THAT(FormatConfigCheck(*loaded), Not(HasSubstr(secret)));

  // An ignored key is not checked: the driver, not the value, decides.
  loaded = Load("db:\n  connection:\n    drivername: sqlite\n    sslmode: required\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->warnings.size(), 1u);
}

TEST_F(ConfigLoaderTest, ExplicitPathMustExist) {
  auto loaded = LoadConfig(Options(dir_.path() + "/absent.yaml"));
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(loaded.error().message, dir_.path() +
                                        "/absent.yaml: cannot read the config file: "
                                        "No such file or directory");
}

TEST_F(ConfigLoaderTest, ExplicitPathMustBeAFile) {
  auto loaded = LoadConfig(Options(dir_.path()));
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().message,
            dir_.path() + ": cannot read the config file: not a regular file");
}

TEST_F(ConfigLoaderTest, ConfigDirEnvironmentFindsFile) {
  TempDir config_dir;
  std::string path = config_dir.Write("config.yaml", "workers: 7\n");
  environment_.Set("PUDDLE_CONFIG_DIR", config_dir.path());
  auto loaded = LoadConfig(Options());
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->source_path, path);
  EXPECT_EQ(loaded->workers, 7);
}

TEST_F(ConfigLoaderTest, OriginalConfigDirSpellingFindsFile) {
  TempDir config_dir;
  std::string path = config_dir.Write("config.yaml", "workers: 9\n");
  environment_.Set("PUDDLE_config_dir", config_dir.path());
  auto loaded = LoadConfig(Options());
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->source_path, path);
  EXPECT_EQ(loaded->workers, 9);
}

TEST_F(ConfigLoaderTest, ConfigDirWithoutFileIsAnError) {
  TempDir config_dir;
  environment_.Set("PUDDLE_CONFIG_DIR", config_dir.path());
  auto loaded = LoadConfig(Options());
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(loaded.error().message, HasSubstr(config_dir.path() + "/config.yaml"));
}

TEST_F(ConfigLoaderTest, DisagreeingConfigDirVariablesAreAnError) {
  environment_.Set("PUDDLE_CONFIG_DIR", "/a").Set("PUDDLE_config_dir", "/b");
  auto loaded = LoadConfig(Options());
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().message,
            "PUDDLE_CONFIG_DIR (/a) and PUDDLE_config_dir (/b) name "
            "different directories; set one of them");
}

TEST_F(ConfigLoaderTest, ExplicitPathBeatsConfigDir) {
  TempDir config_dir;
  config_dir.Write("config.yaml", "workers: 7\n");
  environment_.Set("PUDDLE_CONFIG_DIR", config_dir.path());
  auto loaded = Load("workers: 2\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->source_path, path_);
  EXPECT_EQ(loaded->workers, 2);
}

TEST_F(ConfigLoaderTest, SystemConfigPathReadWhenPresent) {
  LoadOptions options = Options();
  options.system_config_path = dir_.Write("system.yaml", "workers: 5\n");
  auto loaded = LoadConfig(options);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->source_path, options.system_config_path);
  EXPECT_EQ(loaded->workers, 5);
}

TEST_F(ConfigLoaderTest, PrecedenceIsFlagThenEnvironmentThenFile) {
  environment_.Set("PUDDLE_LISTEN", "127.0.0.1:9001").Set("PUDDLE_DATA_DIR", "/env/data");
  auto loaded = Load("listen: 127.0.0.1:9000\ndataDir: /file/data\nworkers: 3\n");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  Config config = *loaded;
  EXPECT_EQ(config.listen, "127.0.0.1:9001");
  EXPECT_EQ(config.data_dir, "/env/data");
  EXPECT_EQ(config.workers, 3);
  EXPECT_TRUE(HasKeyReport(config, "listen", "listen", "used"));
  EXPECT_TRUE(HasKeyReport(config, "listen", "$PUDDLE_LISTEN", "used"));

  ASSERT_TRUE(ApplyOverride(config, "listen", "127.0.0.1:9002", "--listen").has_value());
  EXPECT_EQ(config.listen, "127.0.0.1:9002");
  EXPECT_TRUE(HasKeyReport(config, "listen", "--listen", "used"));
}

TEST_F(ConfigLoaderTest, EnvironmentAppliesWithoutFile) {
  environment_.Set("PUDDLE_DATA_DIR", "/env/data");
  auto loaded = LoadConfig(Options());
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->data_dir, "/env/data");
  EXPECT_EQ(loaded->source_path, "");
}

TEST_F(ConfigLoaderTest, InvalidEnvironmentValueNamesVariable) {
  environment_.Set("PUDDLE_LISTEN", "nowhere");
  auto loaded = LoadConfig(Options());
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().message,
            "environment variable PUDDLE_LISTEN: listen: invalid value \"nowhere\": expected "
            "host:port, such as 127.0.0.1:8443, 0.0.0.0:443 or [::1]:8443");
}

TEST_F(ConfigLoaderTest, OverrideRejectsInvalidValueAndUnusedKey) {
  Config config;
  auto invalid = ApplyOverride(config, "workers", "none", "--workers");
  ASSERT_FALSE(invalid.has_value());
  EXPECT_EQ(invalid.error().message, "--workers: workers: expected an integer, got \"none\"");
  EXPECT_EQ(config.workers, Config().workers);

  auto ignored = ApplyOverride(config, "license.file", "/x", "--license");
  ASSERT_FALSE(ignored.has_value());
  EXPECT_EQ(ignored.error().message, "--license: license.file is not a key Puddle uses");
}

}  // namespace
}  // namespace puddle
