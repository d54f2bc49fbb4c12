// The budget loop: a warning event at 80 % once per user per month, and with
// costs.budget.stopRunningSystems a stop with reason budget at 100 %.
#include <gtest/gtest.h>

#include <algorithm>

#include "core_fixture.h"
#include "workers/loops/budget_loop.h"

namespace puddle::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

class BudgetTest : public CoreTest {
 protected:
  void SetBudget(const std::string& user_id, double budget) {
    auto updated = store_->Write([&](Tx& tx) -> Status {
      PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(user_id));
      user->quota.monthly_budget = budget;
      return tx.UpdateUser(*user);
    });
    ASSERT_TRUE(updated) << updated.error().message;
  }

  BudgetRunSummary Run() {
    BudgetLoop loop(*store_, *systems_, config_);
    auto summary = loop.RunOnce();
    EXPECT_TRUE(summary) << summary.error().message;
    return summary ? *summary : BudgetRunSummary();
  }

  std::vector<Event> Warnings(const std::string& system_id) {
    std::vector<Event> warnings;
    for (const auto& event : ListEvents(system_id)) {
      if (event.level == EventLevel::kWarning) warnings.push_back(event);
    }
    return warnings;
  }
};

TEST_F(BudgetTest, WarnsAtEightyPercentOncePerMonth) {
  // 0.36 per hour against 0.36: 80 % is 48 minutes.
  SetBudget("alice-id", 0.36);
  System lab = MustCreateRunning(alice_, "lab");
  System other = MustCreateRunning(alice_, "other");
  System bobs = MustCreateRunning(bob_, "bobs");  // bob has no budget

  // Two systems: 23 min each is 46 min, 0.276, under 80 % (0.288).
  clock_.Advance(minutes(23));
  EXPECT_EQ(Run().warned_users, 0);
  EXPECT_TRUE(Warnings(lab.id).empty());

  // 24 min each: 48 min, 0.288, exactly 80 %.
  clock_.Advance(minutes(1));
  EXPECT_EQ(Run().warned_users, 1);
  for (const auto& id : {lab.id, other.id}) {
    auto warnings = Warnings(id);
    ASSERT_EQ(warnings.size(), 1u) << id;
    EXPECT_EQ(warnings[0].message,
              "alice has used 80 % of the monthly budget: 0.2880 of 0.3600 USD in 2026-03 (UTC)");
  }
  EXPECT_TRUE(Warnings(bobs.id).empty());

  // Not again this month, not even past 100 %.
  clock_.Advance(minutes(30));
  EXPECT_EQ(Run().warned_users, 0);
  EXPECT_EQ(Warnings(lab.id).size(), 1u);
  // Without costs.budget.stopRunningSystems nothing is stopped.
  EXPECT_EQ(GetSystem(lab.id).status, SystemStatus::kRunning);

  // A new month: 80 % again warns again. From 04-01 00:00, 24 min each.
  clock_.Set(*ParseTime("2026-04-01T00:24:00Z"));
  EXPECT_EQ(Run().warned_users, 1);
  EXPECT_EQ(Warnings(lab.id).size(), 2u);
}

TEST_F(BudgetTest, StopsRunningSystemsAtTheBudgetWhenConfigured) {
  config_.budget_stop_running_systems = true;
  SetBudget("alice-id", 0.36);
  System lab = MustCreateRunning(alice_, "lab");
  System bobs = MustCreateRunning(bob_, "bobs");

  clock_.Advance(minutes(59));  // 0.354: warned, not stopped
  BudgetRunSummary summary = Run();
  EXPECT_EQ(summary.warned_users, 1);
  EXPECT_EQ(summary.stop_requests, 0);
  EXPECT_EQ(GetSystem(lab.id).status, SystemStatus::kRunning);

  clock_.Advance(minutes(1));  // 0.36: used up
  summary = Run();
  EXPECT_EQ(summary.stop_requests, 1);
  EXPECT_EQ(GetSystem(lab.id).status, SystemStatus::kStopping);
  auto operations = ListOperations(lab.id);
  auto stop = std::find_if(operations.begin(), operations.end(), [](const Operation& operation) {
    return operation.action == OperationAction::kStop;
  });
  ASSERT_NE(stop, operations.end());
  EXPECT_EQ(stop->reason, OperationReason::kBudget);
  EXPECT_FALSE(stop->requested_by);

  RunJobs();
  EXPECT_EQ(GetSystem(lab.id).status, SystemStatus::kStopped);
  EXPECT_EQ(GetSystem(bobs.id).status, SystemStatus::kRunning);

  // A later run finds nothing more to stop.
  EXPECT_EQ(Run().stop_requests, 0);
}

}  // namespace
}  // namespace puddle::testing
