#include "config/system_origins.h"

#include <gtest/gtest.h>

namespace puddle {
namespace {

Config MakeConfig(const std::string& listen, const std::string& base_url,
                  const std::string& domain = "systems.localhost") {
  Config config;
  config.listen = listen;
  config.base_url = base_url;
  config.systems_domain = domain;
  return config;
}

TEST(SystemOriginsTest, DefaultsServePuddleOnLoopbackAndSystemsUnderTheDomain) {
  SystemOrigins origins(MakeConfig("127.0.0.1:8443", ""));
  EXPECT_TRUE(origins.Work());
  EXPECT_EQ(origins.Classify("127.0.0.1:8443").kind, HostKind::kPuddle);
  EXPECT_EQ(origins.Classify("localhost:8443").kind, HostKind::kPuddle);
  EXPECT_EQ(origins.Classify("[::1]:8443").kind, HostKind::kPuddle);
  HostMatch system = origins.Classify("Ab12.Systems.Localhost:8443");
  EXPECT_EQ(system.kind, HostKind::kSystem);
  EXPECT_EQ(system.system_id, "ab12");
  EXPECT_EQ(origins.Classify("evil.example:8443").kind, HostKind::kOther);
  EXPECT_EQ(origins.Classify("a.b.systems.localhost").kind, HostKind::kOther);
  EXPECT_EQ(origins.Classify("systems.localhost").kind, HostKind::kOther);
  EXPECT_EQ(origins.Classify("10.1.2.3:8443").kind, HostKind::kOther);
  EXPECT_EQ(origins.OriginOf("ab12"), "https://ab12.systems.localhost:8443");
  EXPECT_EQ(origins.UrlOf("ab12", "prefix"), "https://ab12.systems.localhost:8443/systems/ab12/");
  EXPECT_EQ(origins.UrlOf("ab12", "strip"), "https://ab12.systems.localhost:8443/");
  EXPECT_EQ(origins.PuddleOrigin(), "https://localhost:8443");
}

TEST(SystemOriginsTest, BaseUrlNamesPuddlesHostAndPort) {
  SystemOrigins origins(
      MakeConfig("0.0.0.0:8443", "https://puddle.example.com", "systems-puddle.example.com"));
  EXPECT_TRUE(origins.Work());
  EXPECT_EQ(origins.Classify("puddle.example.com").kind, HostKind::kPuddle);
  EXPECT_EQ(origins.Classify("localhost:8443").kind, HostKind::kOther);
  EXPECT_EQ(origins.Classify("127.0.0.1:8443").kind, HostKind::kPuddle);
  EXPECT_EQ(origins.OriginOf("x1"), "https://x1.systems-puddle.example.com");
  EXPECT_EQ(origins.PuddleOrigin(), "https://puddle.example.com");
}

TEST(SystemOriginsTest, LoopbackDomainDoesNotWorkWhenPuddleIsReachedFromOtherHosts) {
  EXPECT_FALSE(SystemOrigins(MakeConfig("0.0.0.0:8443", "")).Work());
  EXPECT_FALSE(SystemOrigins(MakeConfig("127.0.0.1:8443", "https://10.0.0.5:8443")).Work());
  EXPECT_TRUE(SystemOrigins(MakeConfig("127.0.0.1:8443", "https://puddle.localhost:8443",
                                       "systems.puddle.localhost"))
                  .Work());
}

TEST(SystemOriginsTest, WildcardListenAcceptsAnyIpLiteral) {
  SystemOrigins origins(MakeConfig("0.0.0.0:8443", ""));
  EXPECT_EQ(origins.Classify("10.1.2.3:8443").kind, HostKind::kPuddle);
  EXPECT_EQ(origins.Classify("attacker.example:8443").kind, HostKind::kOther);
}

TEST(SystemOriginsTest, SystemIdsFollowTheApiRule) {
  EXPECT_TRUE(IsSystemId("a"));
  EXPECT_TRUE(IsSystemId("ab-12"));
  EXPECT_FALSE(IsSystemId(""));
  EXPECT_FALSE(IsSystemId("-ab"));
  EXPECT_FALSE(IsSystemId("ab-"));
  EXPECT_FALSE(IsSystemId("xn--ab"));
  EXPECT_FALSE(IsSystemId("Ab"));
  EXPECT_FALSE(IsSystemId("a.b"));
  EXPECT_FALSE(IsSystemId(std::string(41, 'a')));
}

TEST(SystemOriginsTest, SignInGoesOnlyToPuddlePathsOrSystemOrigins) {
  SystemOrigins origins(MakeConfig("127.0.0.1:8443", ""));
  EXPECT_EQ(origins.SignInNext("/api/v1/systems/ab12/open"), "/api/v1/systems/ab12/open");
  EXPECT_EQ(origins.SignInNext("https://ab12.systems.localhost:8443/systems/ab12/tree"),
            "https://ab12.systems.localhost:8443/systems/ab12/tree");
  EXPECT_EQ(origins.SignInNext("https://ab12.systems.localhost:8443"),
            "https://ab12.systems.localhost:8443/");
  // Anything else lands on Puddle's home page.
  EXPECT_EQ(origins.SignInNext(""), "/");
  EXPECT_EQ(origins.SignInNext("//evil.example/"), "/");
  EXPECT_EQ(origins.SignInNext("/\\evil.example/"), "/");
  EXPECT_EQ(origins.SignInNext("/a\nb"), "/");
  EXPECT_EQ(origins.SignInNext("https://evil.example/"), "/");
  EXPECT_EQ(origins.SignInNext("http://ab12.systems.localhost:8443/"), "/");
  EXPECT_EQ(origins.SignInNext("https://ab12.systems.localhost:9999/"), "/");
  EXPECT_EQ(origins.SignInNext("https://ab12.systems.localhost.evil.example:8443/"), "/");
  EXPECT_EQ(origins.SignInNext("https://ab12.systems.localhost:8443@evil.example/"), "/");
  EXPECT_EQ(origins.SignInNext("https://ab12.systems.localhost:8443//evil.example/"), "/");
  EXPECT_EQ(origins.SignInNext("https://127.0.0.1:8443/"), "/");
}

}  // namespace
}  // namespace puddle
