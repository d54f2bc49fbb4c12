// Quotas: the systems and runningSystems limits on create and start, the
// monthly budget refusal, and setting quotas through UserService.
#include <gtest/gtest.h>

#include "core_fixture.h"
#include "services/users/user_service.h"

namespace puddle::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

class QuotaTest : public CoreTest {
 protected:
  void SetQuota(const std::string& user_id, Quota quota) {
    auto updated = store_->Write([&](Tx& tx) -> Status {
      PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(user_id));
      user->quota = quota;
      return tx.UpdateUser(*user);
    });
    ASSERT_TRUE(updated) << updated.error().message;
  }

  Result<SystemView> Create(const Actor& actor, const std::string& name) {
    CreateSystemRequest request;
    request.name = name;
    request.product = kProduct;
    request.version = kVersion;
    request.system_type = kSystemType;
    return systems_->Create(actor, request);
  }

  void StopAndWait(const std::string& id) {
    MustRequest(alice_, id, OperationAction::kStop);
    RunJobs();
    ASSERT_EQ(GetSystem(id).status, SystemStatus::kStopped);
  }
};

TEST_F(QuotaTest, RunningSystemsLimitsCreateAndStart) {
  SetQuota("alice-id", {.running_systems = 1});
  System first = MustCreate(alice_, "first");  // queued counts at once

  auto second = Create(alice_, "second");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kQuotaExceeded);
  EXPECT_EQ(second.error().message,
            "runningSystems quota reached: alice may run 1 system and runs 1 (counting those "
            "being created, started or stopped); stop one first");

  RunJobs();
  StopAndWait(first.id);
  System second_system = MustCreateRunning(alice_, "second");

  // The first is stopped; starting it would make two.
  auto start = systems_->Request(alice_, first.id, OperationAction::kStart);
  ASSERT_FALSE(start);
  EXPECT_EQ(start.error().code, ErrorCode::kQuotaExceeded);
  EXPECT_EQ(GetSystem(first.id).status, SystemStatus::kStopped);

  // An admin's start counts against the owner's quota too.
  auto by_admin = systems_->Request(admin_, first.id, OperationAction::kStart);
  ASSERT_FALSE(by_admin);
  EXPECT_EQ(by_admin.error().code, ErrorCode::kQuotaExceeded);

  // A failed system no longer counts.
  MustRequest(admin_, second_system.id, OperationAction::kFail);
  MustRequest(alice_, first.id, OperationAction::kStart);

  // Other users are not limited by alice's quota.
  MustCreate(bob_, "bobs");
  MustCreate(bob_, "bobs-too");
}

TEST_F(QuotaTest, StoppingSystemStillCountsUntilStopped) {
  SetQuota("alice-id", {.running_systems = 1});
  System first = MustCreateRunning(alice_, "first");
  MustRequest(alice_, first.id, OperationAction::kStop);  // stopping, job not run yet
  auto second = Create(alice_, "second");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kQuotaExceeded);
  RunJobs();
  MustCreate(alice_, "second");
}

TEST_F(QuotaTest, SystemsLimitCountsEverySystemNotDeleted) {
  SetQuota("alice-id", {.systems = 2});
  System first = MustCreateRunning(alice_, "first");
  System second = MustCreateRunning(alice_, "second");
  StopAndWait(first.id);
  StopAndWait(second.id);

  auto third = Create(alice_, "third");
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, ErrorCode::kQuotaExceeded);
  EXPECT_EQ(third.error().message,
            "systems quota reached: alice may have 2 systems and has 2; delete one before "
            "creating another");

  // Starting an existing system is not limited by `systems`.
  MustRequest(alice_, first.id, OperationAction::kStart);

  MustRequest(alice_, second.id, OperationAction::kDelete);
  RunJobs();
  ASSERT_EQ(GetSystem(second.id).status, SystemStatus::kDeleted);
  MustCreate(alice_, "third");
}

TEST_F(QuotaTest, ZeroRunningSystemsRefusesEveryLaunch) {
  SetQuota("alice-id", {.running_systems = 0});
  auto created = Create(alice_, "lab");
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kQuotaExceeded);
}

TEST_F(QuotaTest, MonthlyBudgetRefusesCreateAndStartOnceUsedUp) {
  // 0.36 per hour: one hour uses up a budget of 0.36.
  SetQuota("alice-id", {.monthly_budget = 0.36});
  System first = MustCreateRunning(alice_, "first");
  clock_.Advance(minutes(59));
  System second = MustCreateRunning(alice_, "second");  // 0.354 spent: allowed
  StopAndWait(second.id);
  clock_.Advance(minutes(1));
  // first ran 60 min: 60 * 0.006 = 0.36; second stopped at once: 0.

  auto third = Create(alice_, "third");
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, ErrorCode::kBudgetExceeded);
  EXPECT_EQ(third.error().message,
            "monthlyBudget used up: alice spent 0.3600 USD of 0.3600 USD in 2026-03 (UTC); an "
            "admin can raise the budget");
  auto start = systems_->Request(alice_, second.id, OperationAction::kStart);
  ASSERT_FALSE(start);
  EXPECT_EQ(start.error().code, ErrorCode::kBudgetExceeded);

  // Stopping is always allowed, and other users are not affected.
  MustRequest(alice_, first.id, OperationAction::kStop);
  MustCreate(bob_, "bobs");
}

TEST_F(QuotaTest, MonthlyBudgetStartsAfreshEachUtcMonth) {
  SetQuota("alice-id", {.monthly_budget = 0.36});
  clock_.Set(*ParseTime("2026-03-31T22:00:00Z"));
  System first = MustCreateRunning(alice_, "first");
  clock_.Set(*ParseTime("2026-03-31T23:59:59Z"));
  // 1 h 59 min 59 s in March: 0.7199, over the budget.
  auto refused = Create(alice_, "second");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kBudgetExceeded);

  // In April only the 10 min since midnight count: 10 * 0.006 = 0.06.
  clock_.Set(*ParseTime("2026-04-01T00:10:00Z"));
  MustCreate(alice_, "second");
}

TEST_F(QuotaTest, AdminsSetQuotasWithValidation) {
  UserService users(*store_);
  UserPatch patch;
  patch.quota.running_systems = std::optional<int64_t>(2);
  patch.quota.monthly_budget = std::optional<double>(12.5);
  auto updated = users.Update(admin_, "alice-id", patch);
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(updated->quota.running_systems, 2);
  EXPECT_EQ(updated->quota.monthly_budget, 12.5);
  EXPECT_FALSE(updated->quota.systems);

  // A limit left out stays; null removes it.
  UserPatch clear;
  clear.quota.monthly_budget = std::optional<double>();
  updated = users.Update(admin_, "alice-id", clear);
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(updated->quota.running_systems, 2);
  EXPECT_FALSE(updated->quota.monthly_budget);

  UserPatch negative;
  negative.quota.running_systems = std::optional<int64_t>(-1);
  auto refused = users.Update(admin_, "alice-id", negative);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(refused.error().field, "quota.runningSystems");

  UserPatch bad_budget;
  bad_budget.quota.monthly_budget = std::optional<double>(-0.01);
  refused = users.Update(admin_, "alice-id", bad_budget);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().field, "quota.monthlyBudget");

  auto by_user = users.Update(alice_, "alice-id", patch);
  ASSERT_FALSE(by_user);
  EXPECT_EQ(by_user.error().code, ErrorCode::kForbidden);
}

}  // namespace
}  // namespace puddle::testing
