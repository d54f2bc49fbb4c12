// One-time codes and system cookies (the system_access table), on every dialect.
#include "contract_fixture.h"

namespace puddle::testing {
namespace {

using StoreAccessTest = StoreContractTest;

SystemAccessGrant MakeGrant(const std::string& hash, SystemAccessKind kind, TimePoint now,
                            std::chrono::seconds lifetime) {
  SystemAccessGrant grant;
  grant.hash = hash;
  grant.kind = kind;
  grant.system_id = "sys1";
  grant.user_id = "user-1";
  grant.session_hash = "session-hash";
  grant.created_at = now;
  grant.expires_at = now + lifetime;
  return grant;
}

TEST_P(StoreAccessTest, GrantRoundTripsAndIsDeletedOnce) {
  SystemAccessGrant code =
      MakeGrant("code-hash", SystemAccessKind::kCode, clock_.Now(), std::chrono::seconds(60));
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.InsertSystemAccess(code); }));

  auto read = store_->ReadValue<std::optional<SystemAccessGrant>>(
      [](Tx& tx) { return tx.GetSystemAccess("code-hash"); });
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->kind, SystemAccessKind::kCode);
  EXPECT_EQ((*read)->system_id, "sys1");
  EXPECT_EQ((*read)->user_id, "user-1");
  EXPECT_EQ((*read)->session_hash, "session-hash");
  EXPECT_EQ((*read)->created_at, code.created_at);
  EXPECT_EQ((*read)->expires_at, code.expires_at);

  auto first = store_->WriteValue<bool>([](Tx& tx) { return tx.DeleteSystemAccess("code-hash"); });
  ASSERT_OK(first);
  EXPECT_TRUE(*first);
  auto second = store_->WriteValue<bool>([](Tx& tx) { return tx.DeleteSystemAccess("code-hash"); });
  ASSERT_OK(second);
  EXPECT_FALSE(*second) << "a code could be used up twice";
}

TEST_P(StoreAccessTest, DeleteExpiredKeepsLiveGrants) {
  TimePoint now = clock_.Now();
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertSystemAccess(
        MakeGrant("old-code", SystemAccessKind::kCode, now - std::chrono::hours(1),
                  std::chrono::seconds(60))));
    return tx.InsertSystemAccess(
        MakeGrant("live-cookie", SystemAccessKind::kCookie, now, std::chrono::seconds(3600)));
  }));
  auto deleted =
      store_->WriteValue<int64_t>([&](Tx& tx) { return tx.DeleteExpiredSystemAccess(now); });
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 1);
  auto live = store_->ReadValue<std::optional<SystemAccessGrant>>(
      [](Tx& tx) { return tx.GetSystemAccess("live-cookie"); });
  ASSERT_OK(live);
  ASSERT_TRUE(live->has_value());
  EXPECT_EQ((*live)->kind, SystemAccessKind::kCookie);
}

INSTANTIATE_TEST_SUITE_P(Dialects, StoreAccessTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

}  // namespace
}  // namespace puddle::testing
