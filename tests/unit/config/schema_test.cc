#include "config/schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/suggest.h"

namespace puddle::config {
namespace {

std::vector<const KeyDefinition*> AllKeys() {
  std::vector<const KeyDefinition*> keys;
  for (const PartDefinition& part : ConfigParts()) {
    for (const KeyDefinition& key : part.keys) keys.push_back(&key);
  }
  return keys;
}

TEST(ConfigSchemaTest, EverySpellingNamesOneKey) {
  std::map<std::string, std::string> owner;
  for (const KeyDefinition* key : AllKeys()) {
    std::vector<std::string> spellings = {std::string(key->key)};
    spellings.insert(spellings.end(), key->spellings.begin(), key->spellings.end());
    for (const std::string& spelling : spellings) {
      auto [existing, inserted] = owner.emplace(spelling, key->key);
      EXPECT_TRUE(inserted) << spelling << " belongs to " << existing->second << " and "
                            << key->key;
      EXPECT_EQ(FindKeyBySpelling(spelling), key) << spelling;
    }
  }
}

TEST(ConfigSchemaTest, NoSpellingIsAlsoASection) {
  for (const KeyDefinition* key : AllKeys()) {
    EXPECT_FALSE(IsSection(key->key)) << key->key;
    for (const std::string& spelling : key->spellings) EXPECT_FALSE(IsSection(spelling));
  }
}

TEST(ConfigSchemaTest, EveryEnabledKeyAcceptsEnable) {
  size_t enabled_keys = 0;
  for (const KeyDefinition* key : AllKeys()) {
    if (!key->key.ends_with(".enabled")) continue;
    ++enabled_keys;
    std::string enable(key->key.substr(0, key->key.size() - 1));
    EXPECT_EQ(FindKeyBySpelling(enable), key) << enable;
  }
  EXPECT_GE(enabled_keys, 14u);
}

TEST(ConfigSchemaTest, OriginalDocumentedSpellingsAreAccepted) {
  const std::map<std::string, std::string> spellings = {
      {"redis.connection.address", "redis.connections.address"},
      {"redis.connection.password", "redis.connections.password"},
      {"redis.workersCount", "workers"},
      {"auth.awsCognito.enable", "auth.awsCognito.enabled"},
      {"providers.aws.sgId", "providers.aws.sgIds"},
      {"providers.aws.pcId", "providers.aws.vpcId"},
      {"connections.usePublicIp", "connections.usePublicIP"},
      {"backend.connections.usePublicIp", "connections.usePublicIP"},
      {"backend.baseURL", "backend.baseUrl"},
      {"packer.usePublicIp", "packer.usePublicIP"},
      {"webclient.usePublicIP", "webclient.usePublicIp"},
  };
  for (const auto& [spelling, key] : spellings) {
    const KeyDefinition* found = FindKeyBySpelling(spelling);
    ASSERT_NE(found, nullptr) << spelling;
    EXPECT_EQ(found->key, key) << spelling;
  }
}

TEST(ConfigSchemaTest, UsedKeysHaveReadersAndOthersDoNot) {
  for (const KeyDefinition* key : AllKeys()) {
    EXPECT_EQ(key->read != nullptr, key->key_class == KeyClass::kUsed) << key->key;
    EXPECT_FALSE(key->meaning.empty()) << key->key;
    if (key->key_class == KeyClass::kUsed) {
      EXPECT_TRUE(!key->default_value.empty() || !key->example.empty()) << key->key;
    }
  }
}

TEST(ConfigSchemaTest, PartsExplainThemselves) {
  const auto& parts = ConfigParts();
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts.front().key_class, KeyClass::kUsed);
  for (size_t i = 1; i < parts.size(); ++i) {
    const PartDefinition& part = parts[i];
    // Only a switched part may be used besides Puddle's own keys.
    if (part.key_class == KeyClass::kUsed) {
      EXPECT_TRUE(part.part_switch == PartSwitch::kKeyEquals ||
                  part.part_switch == PartSwitch::kNonEmptyKey)
          << part.name;
      if (part.part_switch == PartSwitch::kKeyEquals) {
        EXPECT_FALSE(part.switch_value.empty()) << part.name;
      }
    } else {
      EXPECT_NE(part.part_switch, PartSwitch::kKeyEquals) << part.name;
    }
    EXPECT_FALSE(part.reason.empty()) << part.name;
    EXPECT_FALSE(part.keys.empty()) << part.name;
    for (const KeyDefinition& key : part.keys) {
      EXPECT_EQ(key.key_class, part.key_class) << key.key;
      EXPECT_EQ(key.part, &part) << key.key;
    }
    if (part.key_class == KeyClass::kIgnored) continue;
    EXPECT_FALSE(part.feature.empty()) << part.name;
    EXPECT_NE(part.part_switch, PartSwitch::kNone) << part.name;
    if (part.part_switch == PartSwitch::kAnyValue) continue;
    const KeyDefinition* switch_key = FindKey(part.switch_key);
    ASSERT_NE(switch_key, nullptr) << part.name;
    EXPECT_EQ(switch_key->part, &part) << part.name;
  }
}

TEST(ConfigSchemaTest, SecretKeysAreMarked) {
  for (const char* key :
       {"auth.token.secret", "db.connection.password", "redis.connections.password",
        "auth.ldap.bindPassword", "auth.oidc.clientSecret", "mailing.password", "http_proxy"}) {
    const KeyDefinition* found = FindKey(key);
    ASSERT_NE(found, nullptr) << key;
    EXPECT_TRUE(found->secret) << key;
  }
}

TEST(ConfigSchemaTest, OpenPartsCoverUndeclaredKeys) {
  const PartDefinition* packer = FindOpenPart("packer.somethingNew");
  ASSERT_NE(packer, nullptr);
  EXPECT_EQ(packer->name, "packer");
  EXPECT_EQ(FindOpenPart("providers.aws.somethingNew"), nullptr);
  EXPECT_EQ(FindOpenPart("packer"), nullptr);
}

TEST(ConfigSchemaTest, ExpandedSpellingsFollowRules) {
  EXPECT_THAT(
      ExpandedSpellings("redis.connections.enabled", {}),
      ::testing::UnorderedElementsAre("redis.connections.enabled", "redis.connections.enable",
                                      "redis.connection.enabled", "redis.connection.enable"));
}

TEST(ConfigSuggestTest, EditDistanceCountsTranspositionOnce) {
  EXPECT_EQ(EditDistance("listen", "listen"), 0u);
  EXPECT_EQ(EditDistance("lisen", "listen"), 1u);
  EXPECT_EQ(EditDistance("uidRnage", "uidRange"), 1u);
  EXPECT_EQ(EditDistance("BaseURL", "baseurl"), 0u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
}

TEST(ConfigSuggestTest, SuggestsNearestKnownPath) {
  EXPECT_EQ(SuggestKnownPath("auth.token.secrt"), "auth.token.secret");
  EXPECT_EQ(SuggestKnownPath("vmNameRegex"), "vmNameRegexp");
  EXPECT_EQ(SuggestKnownPath("completely.unrelated.thing"), std::nullopt);
}

}  // namespace
}  // namespace puddle::config
