// AuthService on a real SQLite store with a fake clock: rate limits, session
// and token lifetimes, revocation and CSRF.
#include "auth/auth_service.h"

#include <unistd.h>

#include <filesystem>
#include <vector>
#include <thread>
#include <atomic>

#include <gtest/gtest.h>

#include "common/crypto.h"
#include "services/users/user_service.h"
#include "storage/sqlite/sqlite_database.h"

namespace puddle {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

class AuthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().has_value());
    dir_ = std::filesystem::temp_directory_path() /
           ("auth-test-" + std::to_string(getpid()) + "-" + NewSuffix());
    std::filesystem::create_directories(dir_);
    auto database = sql::SqliteDatabase::Open((dir_ / "puddle.db").string());
    ASSERT_TRUE(database.has_value());
    store_ = std::make_unique<Store>(std::move(*database), clock_);
    ASSERT_TRUE(store_->Migrate().has_value());
    users_ = std::make_unique<UserService>(*store_);
    auth_ = std::make_unique<AuthService>(*store_, AuthOptions{"secret-for-tests"});

    auto admin = users_->EnsureBootstrapAdmin("admin-password");
    ASSERT_TRUE(admin.has_value());
    admin_ = {UserId("admin"), "admin", Role::kAdmin, ""};
    auto alice = users_->Create(admin_, "alice", "alice-password", Role::kUser);
    ASSERT_TRUE(alice.has_value()) << alice.error().message;
    alice_id_ = alice->id;
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string NewSuffix() { return RandomToken(6); }

  std::string UserId(const std::string& username) {
    auto user = store_->ReadValue<std::optional<User>>(
        [&](Tx& tx) { return tx.GetUserByUsername(username); });
    return user && *user ? (*user)->id : std::string();
  }

  std::filesystem::path dir_;
  FakeClock clock_{FromUnixMillis(1'780'000'000'000)};
  std::unique_ptr<Store> store_;
  std::unique_ptr<UserService> users_;
  std::unique_ptr<AuthService> auth_;
  Actor admin_;
  std::string alice_id_;
};

TEST_F(AuthServiceTest, TenFailuresPerAddressAreRateLimited) {
  for (int i = 0; i < 10; ++i) {
    auto failed = auth_->Login("alice", "wrong-password", "192.0.2.1");
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().code, ErrorCode::kUnauthenticated) << "attempt " << i + 1;
  }

  // The right password from the same address is refused too, with a wait.
  auto limited = auth_->Login("alice", "alice-password", "192.0.2.1");
  ASSERT_FALSE(limited.has_value());
  EXPECT_EQ(limited.error().code, ErrorCode::kRateLimited);
  EXPECT_GT(limited.error().retry_after_seconds, 0);
  EXPECT_LE(limited.error().retry_after_seconds, 15 * 60 + 1);

  // Another address is not limited by the first one's failures.
  EXPECT_TRUE(auth_->Login("alice", "alice-password", "192.0.2.2").has_value());

  // The window passes.
  clock_.Advance(minutes(16));
  EXPECT_TRUE(auth_->Login("alice", "alice-password", "192.0.2.1").has_value());
}

TEST_F(AuthServiceTest, HundredFailuresPerUserLimitEveryAddress) {
  for (int i = 0; i < 100; ++i) {
    std::string address = "198.51.100." + std::to_string(i % 50);
    ASSERT_FALSE(auth_->TokenForPassword("alice", "wrong-password", address).has_value());
  }
  auto limited = auth_->TokenForPassword("alice", "alice-password", "203.0.113.9");
  ASSERT_FALSE(limited.has_value());
  EXPECT_EQ(limited.error().code, ErrorCode::kRateLimited);

  // Other users are unaffected.
  EXPECT_TRUE(auth_->TokenForPassword("admin", "admin-password", "203.0.113.9").has_value());
}

TEST_F(AuthServiceTest, PasswordChecksBeyondTheLimitAreRefusedNotQueued) {
  // One check at a time and no waiting: of several sign-ins started together
  // under different user names, those that find a check under way are
  // refused at once with a short Retry-After, and the others still work.
  AuthOptions options{"secret-for-tests"};
  options.concurrent_password_checks = 1;
  options.password_check_wait = std::chrono::milliseconds(0);
  AuthService auth(*store_, options);

  constexpr int kAttempts = 6;
  std::atomic<int> ready{0};
  std::vector<std::optional<Error>> outcomes(kAttempts);
  std::vector<std::thread> threads;
  for (int i = 0; i < kAttempts; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kAttempts) std::this_thread::yield();
      std::string username = i == 0 ? "alice" : "guess-" + std::to_string(i);
      auto grant = auth.Login(username, "alice-password", "192.0.2.1");
      if (!grant) outcomes[i] = grant.error();
    });
  }
  for (auto& thread : threads) thread.join();

  int refused = 0;
  for (const auto& outcome : outcomes) {
    if (outcome && outcome->code == ErrorCode::kRateLimited) {
      ++refused;
      EXPECT_EQ(outcome->retry_after_seconds, 1);
    }
  }
  EXPECT_GE(refused, 1) << "six argon2id checks overlapped with a limit of one";
  EXPECT_LT(refused, kAttempts) << "no check ran at all";

  // Once the flood is over, checks run again.
  EXPECT_TRUE(auth.Login("alice", "alice-password", "192.0.2.1").has_value());
}

TEST_F(AuthServiceTest, UnknownUserFailsLikeWrongPassword) {
  auto unknown = auth_->Login("nobody", "whatever-password", "192.0.2.1");
  auto wrong = auth_->Login("alice", "wrong-password", "192.0.2.1");
  ASSERT_FALSE(unknown.has_value());
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(unknown.error().code, wrong.error().code);
  EXPECT_EQ(unknown.error().message, wrong.error().message);
}

TEST_F(AuthServiceTest, SessionEndsAfterEightHoursIdle) {
  auto grant = auth_->Login("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(grant.has_value());

  clock_.Advance(hours(7));
  ASSERT_TRUE(auth_->AuthenticateSession(grant->session).has_value());
  // Use refreshes the idle clock.
  clock_.Advance(hours(7));
  ASSERT_TRUE(auth_->AuthenticateSession(grant->session).has_value());
  clock_.Advance(hours(8) + minutes(1));
  auto expired = auth_->AuthenticateSession(grant->session);
  ASSERT_FALSE(expired.has_value());
  EXPECT_EQ(expired.error().code, ErrorCode::kUnauthenticated);
}

TEST_F(AuthServiceTest, SessionEndsAfterSevenDaysEvenWhenUsed) {
  auto grant = auth_->Login("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(grant.has_value());
  for (int i = 0; i < 7 * 4; ++i) {
    clock_.Advance(hours(6));
    if (i < 7 * 4 - 1) {
      ASSERT_TRUE(auth_->AuthenticateSession(grant->session).has_value()) << "after " << (i + 1) * 6 << " h";
    }
  }
  EXPECT_FALSE(auth_->AuthenticateSession(grant->session).has_value());
}

TEST_F(AuthServiceTest, TokenLastsTwelveHours) {
  auto token = auth_->TokenForPassword("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->expires_at, clock_.Now() + hours(12));
  clock_.Advance(hours(11));
  EXPECT_TRUE(auth_->AuthenticateToken(token->token).has_value());
  clock_.Advance(hours(1));
  EXPECT_FALSE(auth_->AuthenticateToken(token->token).has_value());
}

TEST_F(AuthServiceTest, SessionIsNotAToken) {
  auto grant = auth_->Login("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(grant.has_value());
  EXPECT_FALSE(auth_->AuthenticateToken(grant->session).has_value());
}

TEST_F(AuthServiceTest, DisablingEndsSessionsTokensAndKeys) {
  auto grant = auth_->Login("alice", "alice-password", "192.0.2.1");
  auto token = auth_->TokenForPassword("alice", "alice-password", "192.0.2.1");
  Actor alice{alice_id_, "alice", Role::kUser, ""};
  auto key = users_->CreateApiKey(alice, "laptop");
  ASSERT_TRUE(grant.has_value());
  ASSERT_TRUE(token.has_value());
  ASSERT_TRUE(key.has_value());

  UserPatch patch;
  patch.disabled = true;
  ASSERT_TRUE(users_->Update(admin_, alice_id_, patch).has_value());

  EXPECT_FALSE(auth_->AuthenticateSession(grant->session).has_value());
  EXPECT_FALSE(auth_->AuthenticateToken(token->token).has_value());
  EXPECT_FALSE(auth_->TokenForApiKey(key->key.id, key->secret).has_value());
  EXPECT_FALSE(auth_->Login("alice", "alice-password", "192.0.2.1").has_value());
}

TEST_F(AuthServiceTest, PasswordResetEndsEveryCredential) {
  auto token = auth_->TokenForPassword("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(token.has_value());
  ASSERT_TRUE(users_->SetPassword(admin_, alice_id_, "new-alice-password").has_value());
  EXPECT_FALSE(auth_->AuthenticateToken(token->token).has_value());
  EXPECT_FALSE(auth_->Login("alice", "alice-password", "192.0.2.1").has_value());
  EXPECT_TRUE(auth_->Login("alice", "new-alice-password", "192.0.2.1").has_value());
}

TEST_F(AuthServiceTest, ApiKeySecretIsCheckedAndStoredHashed) {
  Actor alice{alice_id_, "alice", Role::kUser, ""};
  auto key = users_->CreateApiKey(alice, "laptop");
  ASSERT_TRUE(key.has_value());
  EXPECT_NE(key->key.secret_hash, key->secret);
  EXPECT_TRUE(auth_->TokenForApiKey(key->key.id, key->secret).has_value());
  EXPECT_FALSE(auth_->TokenForApiKey(key->key.id, key->secret + "x").has_value());
  EXPECT_FALSE(auth_->TokenForApiKey("no-such-key", key->secret).has_value());
}

TEST_F(AuthServiceTest, CsrfTokenIsBoundToSession) {
  auto first = auth_->Login("alice", "alice-password", "192.0.2.1");
  auto second = auth_->Login("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  std::string first_hash = Sha256Hex(first->session);
  std::string second_hash = Sha256Hex(second->session);
  EXPECT_TRUE(auth_->CheckCsrf(first_hash, first->csrf_token));
  EXPECT_FALSE(auth_->CheckCsrf(second_hash, first->csrf_token));
  EXPECT_FALSE(auth_->CheckCsrf(first_hash, ""));
}

TEST_F(AuthServiceTest, ChangePasswordKeepsOnlyCurrentSession) {
  auto current = auth_->Login("alice", "alice-password", "192.0.2.1");
  auto other = auth_->Login("alice", "alice-password", "192.0.2.2");
  ASSERT_TRUE(current.has_value());
  ASSERT_TRUE(other.has_value());
  Actor alice{alice_id_, "alice", Role::kUser, Sha256Hex(current->session)};

  auto wrong = auth_->ChangePassword(alice, "not-my-password", "another-password", "192.0.2.1");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().field, "currentPassword");

  ASSERT_TRUE(auth_->ChangePassword(alice, "alice-password", "another-password", "192.0.2.1"));
  EXPECT_TRUE(auth_->AuthenticateSession(current->session).has_value());
  EXPECT_FALSE(auth_->AuthenticateSession(other->session).has_value());
}

TEST_F(AuthServiceTest, ChangePasswordWithTokenKeepsThatToken) {
  auto current = auth_->TokenForPassword("alice", "alice-password", "192.0.2.1");
  auto other = auth_->TokenForPassword("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(current.has_value());
  ASSERT_TRUE(other.has_value());
  auto actor = auth_->AuthenticateToken(current->token);
  ASSERT_TRUE(actor.has_value());

  ASSERT_TRUE(auth_->ChangePassword(*actor, "alice-password", "another-password", "192.0.2.1"));
  EXPECT_TRUE(auth_->AuthenticateToken(current->token).has_value());
  EXPECT_FALSE(auth_->AuthenticateToken(other->token).has_value());
}

TEST_F(AuthServiceTest, LogoutRevokesTheTokenUsed) {
  auto token = auth_->TokenForPassword("alice", "alice-password", "192.0.2.1");
  ASSERT_TRUE(token.has_value());
  auto actor = auth_->AuthenticateToken(token->token);
  ASSERT_TRUE(actor.has_value());
  ASSERT_FALSE(actor->token_hash.empty());
  ASSERT_TRUE(auth_->Logout(actor->token_hash));
  EXPECT_FALSE(auth_->AuthenticateToken(token->token).has_value());
}

TEST_F(AuthServiceTest, ShortPasswordIsRejectedOnField) {
  auto status = AuthService::ValidatePassword("short", "password");
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(status.error().field, "password");
}

}  // namespace
}  // namespace puddle
