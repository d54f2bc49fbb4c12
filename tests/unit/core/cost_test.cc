// Cost sessions: whole seconds at the price fixed when a session opened,
// summed per system, closed and kept open by the right transitions.
#include <gtest/gtest.h>

#include "core_fixture.h"

namespace puddle::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

CostSession Session(double price_per_hour, TimePoint start, std::optional<TimePoint> end) {
  CostSession session;
  session.price_per_hour = price_per_hour;
  session.start = start;
  session.end = end;
  return session;
}

TEST(SessionCostTest, CountsWholeSecondsAtSessionPrice) {
  TimePoint start = TestStart();
  // 3.60 per hour is 0.001 per second; 90.999 s count as 90 s.
  CostSession open = Session(3.6, start, std::nullopt);
  EXPECT_NEAR(SessionCost(open, start + milliseconds(90999)), 0.09, 1e-12);
  EXPECT_DOUBLE_EQ(SessionCost(open, start + milliseconds(999)), 0.0);
  EXPECT_NEAR(SessionCost(open, start + std::chrono::hours(1)), 3.6, 1e-12);

  // A closed session costs up to its end, whatever `now` is.
  CostSession closed = Session(3.6, start, start + seconds(10));
  EXPECT_NEAR(SessionCost(closed, start + std::chrono::hours(5)), 0.01, 1e-12);

  // A clock behind the start never gives a negative cost.
  EXPECT_DOUBLE_EQ(SessionCost(open, start - seconds(5)), 0.0);
}

class CostTest : public CoreTest {
 protected:
  double CostOf(const std::string& id) {
    auto view = systems_->Get(alice_, id);
    EXPECT_TRUE(view) << view.error().message;
    return view ? view->cost : -1;
  }
};

TEST_F(CostTest, CostSumsSessions) {
  System system = MustCreateRunning(alice_, "lab");
  EXPECT_DOUBLE_EQ(CostOf(system.id), 0.0);

  clock_.Advance(seconds(100));
  EXPECT_NEAR(CostOf(system.id), 0.01, 1e-12);
  MustRequest(alice_, system.id, OperationAction::kStop);
  RunJobs();
  clock_.Advance(seconds(1000));
  // Stopped time costs nothing.
  EXPECT_NEAR(CostOf(system.id), 0.01, 1e-12);

  MustRequest(alice_, system.id, OperationAction::kStart);
  RunJobs();
  clock_.Advance(milliseconds(50500));
  EXPECT_NEAR(CostOf(system.id), 0.01 + 0.005, 1e-12);
  ASSERT_EQ(ListSessions(system.id).size(), 2u);
}

TEST_F(CostTest, PriceIsFixedWhenSessionOpens) {
  System system = MustCreateRunning(alice_, "lab");
  auto repriced = store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto type, tx.GetSystemType(kSystemType));
    type->price_per_hour = 36.0;
    return tx.UpdateSystemType(*type);
  });
  ASSERT_TRUE(repriced) << repriced.error().message;
  clock_.Advance(seconds(10));
  EXPECT_NEAR(CostOf(system.id), 0.001, 1e-12);
}

TEST_F(CostTest, SessionClosesWhenDeletingStarts) {
  System system = MustCreateRunning(alice_, "lab");
  clock_.Advance(seconds(20));
  MustRequest(alice_, system.id, OperationAction::kDelete);
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kDeleting);

  auto sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  ASSERT_TRUE(sessions[0].end.has_value());
  EXPECT_EQ(*sessions[0].end, clock_.Now());

  // Time spent deleting is not charged.
  clock_.Advance(seconds(300));
  EXPECT_NEAR(CostOf(system.id), 0.002, 1e-12);
  RunJobs();
  EXPECT_NEAR(CostOf(system.id), 0.002, 1e-12);
}

TEST_F(CostTest, RebootKeepsSessionOpen) {
  System system = MustCreateRunning(alice_, "lab");
  TimePoint opened = ListSessions(system.id).at(0).start;

  clock_.Advance(seconds(10));
  MustRequest(alice_, system.id, OperationAction::kReboot);
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kRebooting);
  auto sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_FALSE(sessions[0].end.has_value());

  clock_.Advance(seconds(10));
  RunJobs();
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].start, opened);
  EXPECT_FALSE(sessions[0].end.has_value());
  clock_.Advance(seconds(10));
  EXPECT_NEAR(CostOf(system.id), 0.003, 1e-12);
}

TEST_F(CostTest, FailedStartOpensNoSession) {
  FakeProviderOptions options = QuickFake();
  options.failure = FakeFailure::kFailsToStart;
  UseFake(options);
  System system = MustCreate(alice_, "lab");
  RunJobs();
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kFailed);
  EXPECT_TRUE(ListSessions(system.id).empty());
  EXPECT_DOUBLE_EQ(CostOf(system.id), 0.0);
}

}  // namespace
}  // namespace puddle::testing
