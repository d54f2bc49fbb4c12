#include "common/crypto.h"

#include <gtest/gtest.h>

namespace puddle {
namespace {

class CryptoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().has_value()); }
};

TEST_F(CryptoTest, PasswordHashIsArgon2idAndVerifies) {
  auto hash = HashPassword("correct horse");
  ASSERT_TRUE(hash.has_value());
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(VerifyPassword("correct horse", *hash));
  EXPECT_FALSE(VerifyPassword("wrong horse", *hash));
}

TEST_F(CryptoTest, EmptyHashNeverVerifies) { EXPECT_FALSE(VerifyPassword("", "")); }

TEST_F(CryptoTest, SealedSecretOpensOnlyWithSameSecret) {
  std::string sealed = SealSecret("key one", "product token");
  EXPECT_EQ(sealed.find("product token"), std::string::npos);
  EXPECT_EQ(OpenSecret("key one", sealed), "product token");
  EXPECT_FALSE(OpenSecret("key two", sealed).has_value());
  sealed[sealed.size() / 2] = sealed[sealed.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(OpenSecret("key one", sealed).has_value());
}

TEST_F(CryptoTest, RandomTokensDiffer) {
  std::string first = RandomToken();
  EXPECT_GE(first.size(), 43u);  // 32 bytes of base64url
  EXPECT_NE(first, RandomToken());
}

TEST_F(CryptoTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace puddle
