// The cost report over a scripted timeline of sessions of three users, two
// products and two system types, with a window that clips sessions at both
// ends. Expected hours and costs are worked out by hand in the comments.
#include <gtest/gtest.h>

#include "common/json.h"
#include "core_fixture.h"
#include "services/costs/cost_report.h"
#include "services/costs/cost_service.h"

namespace puddle::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TimePoint At(const char* text) { return *ParseTime(text); }

class CostReportTest : public CoreTest {
 protected:
  // Records a session of `system_id` from `start` to `end` (nullopt: still open).
  void Session(const std::string& system_id, const std::string& owner_id,
               const std::string& product, const std::string& type, double price,
               TimePoint start, std::optional<TimePoint> end) {
    System system;
    system.id = system_id;
    system.owner_id = owner_id;
    system.product = product;
    system.system_type = type;
    system.price_per_hour = price;
    clock_.Set(start);
    auto written = store_->Write([&](Tx& tx) -> Status {
      PUDDLE_RETURN_IF_ERROR(tx.OpenCostSession(system));
      if (end) PUDDLE_RETURN_IF_ERROR(tx.CloseCostSession(system_id, *end));
      return Ok();
    });
    ASSERT_TRUE(written) << written.error().message;
  }

  // The timeline. The window is 2026-03-10T00:00Z to 2026-03-11T00:00Z and
  // "now" is 2026-03-11T05:00Z.
  void ScriptTimeline() {
    // S1 alice jupyter cpu-small 0.36/h, 03-09 22:00 to 03-10 02:00: 2 h inside.
    Session("s1", "alice-id", "jupyter", "cpu-small", 0.36, At("2026-03-09T22:00:00Z"),
            At("2026-03-10T02:00:00Z"));
    // S2 alice jupyter gpu-large 3.60/h, 10:00 to 10:30: 0.5 h inside.
    Session("s2", "alice-id", "jupyter", "gpu-large", 3.6, At("2026-03-10T10:00:00Z"),
            At("2026-03-10T10:30:00Z"));
    // S3 bob h2o cpu-small 0.36/h, from 23:00, still open: 1 h inside.
    Session("s3", "bob-id", "h2o", "cpu-small", 0.36, At("2026-03-10T23:00:00Z"), std::nullopt);
    // S4 bob jupyter cpu-small, 03-11 01:00 to 02:00: after the window.
    Session("s4", "bob-id", "jupyter", "cpu-small", 0.36, At("2026-03-11T01:00:00Z"),
            At("2026-03-11T02:00:00Z"));
    // S5 admin h2o gpu-large, 03-09 00:00 to 12:00: before the window.
    Session("s5", "admin-id", "h2o", "gpu-large", 3.6, At("2026-03-09T00:00:00Z"),
            At("2026-03-09T12:00:00Z"));
    // S6 bob h2o gpu-large 3.60/h, 12:00:00 to 12:00:10.999: 10 whole seconds.
    Session("s6", "bob-id", "h2o", "gpu-large", 3.6, At("2026-03-10T12:00:00Z"),
            At("2026-03-10T12:00:10.999Z"));
    clock_.Set(At("2026-03-11T05:00:00Z"));
  }

  CostReport Report(const Actor& actor, CostGroupBy group_by,
                    std::optional<TimePoint> from = At("2026-03-10T00:00:00Z"),
                    std::optional<TimePoint> to = At("2026-03-11T00:00:00Z")) {
    CostService costs(*store_, "USD");
    auto report = costs.Report(actor, {from, to, group_by});
    EXPECT_TRUE(report) << report.error().message;
    return report ? *report : CostReport();
  }
};

void ExpectItem(const CostReport& report, size_t index, const std::string& key, double hours,
                double cost) {
  ASSERT_LT(index, report.items.size());
  EXPECT_EQ(report.items[index].key, key);
  EXPECT_NEAR(report.items[index].hours, hours, 1e-9) << key;
  EXPECT_NEAR(report.items[index].cost, cost, 1e-9) << key;
}

TEST_F(CostReportTest, GroupsByUserWithUsernames) {
  ScriptTimeline();
  CostReport report = Report(admin_, CostGroupBy::kUser);
  ASSERT_EQ(report.items.size(), 2u);  // admin's only session is outside the window
  // alice: S1 2 h * 0.36 = 0.72, S2 0.5 h * 3.60 = 1.80; 2.5 h, 2.52.
  ExpectItem(report, 0, "alice", 2.5, 2.52);
  // bob: S3 1 h * 0.36 = 0.36, S6 10 s * 3.60 / 3600 = 0.01; 3610 s = 1.0027777... h, 0.37.
  ExpectItem(report, 1, "bob", 3610.0 / 3600.0, 0.37);
  // 2.52 + 0.37
  EXPECT_NEAR(report.total, 2.89, 1e-9);
  EXPECT_EQ(report.currency, "USD");

  boost::json::object json = CostReportJson(report);
  EXPECT_EQ(json::Serialize(json),
            "{\"from\":\"2026-03-10T00:00:00.000Z\",\"to\":\"2026-03-11T00:00:00.000Z\","
            "\"groupBy\":\"user\",\"currency\":\"USD\",\"items\":["
            "{\"key\":\"alice\",\"hours\":2.5,\"cost\":2.52},"
            "{\"key\":\"bob\",\"hours\":1.0028,\"cost\":0.37}],\"total\":2.89}");
}

TEST_F(CostReportTest, GroupsByProduct) {
  ScriptTimeline();
  CostReport report = Report(admin_, CostGroupBy::kProduct);
  ASSERT_EQ(report.items.size(), 2u);
  // h2o: S3 1 h, 0.36 + S6 10 s, 0.01.
  ExpectItem(report, 0, "h2o", 3610.0 / 3600.0, 0.37);
  // jupyter: S1 2 h, 0.72 + S2 0.5 h, 1.80.
  ExpectItem(report, 1, "jupyter", 2.5, 2.52);
  EXPECT_NEAR(report.total, 2.89, 1e-9);
}

TEST_F(CostReportTest, GroupsBySystemType) {
  ScriptTimeline();
  CostReport report = Report(admin_, CostGroupBy::kSystemType);
  ASSERT_EQ(report.items.size(), 2u);
  // cpu-small: S1 2 h + S3 1 h = 3 h at 0.36 = 1.08.
  ExpectItem(report, 0, "cpu-small", 3.0, 1.08);
  // gpu-large: S2 1800 s + S6 10 s = 1810 s = 0.50277... h; 1.80 + 0.01 = 1.81.
  ExpectItem(report, 1, "gpu-large", 1810.0 / 3600.0, 1.81);
  EXPECT_NEAR(report.total, 2.89, 1e-9);

  EXPECT_EQ(CostReportCsv(report),
            "key,hours,cost\r\n"
            "cpu-small,3.0000,1.0800\r\n"
            "gpu-large,0.5028,1.8100\r\n");
}

TEST_F(CostReportTest, UsersSeeOnlyTheirOwnCosts) {
  ScriptTimeline();
  CostReport report = Report(alice_, CostGroupBy::kProduct);
  ASSERT_EQ(report.items.size(), 1u);
  ExpectItem(report, 0, "jupyter", 2.5, 2.52);
  EXPECT_NEAR(report.total, 2.52, 1e-9);
}

TEST_F(CostReportTest, OpenSessionsCountUpToNow) {
  ScriptTimeline();
  // Window 03-10 00:00 to 03-12 00:00, now 03-11 05:00. bob: S3 23:00 to now
  // = 6 h * 0.36 = 2.16; S4 1 h * 0.36 = 0.36; S6 0.01. 7 h + 10 s, 2.53.
  CostReport report =
      Report(admin_, CostGroupBy::kUser, At("2026-03-10T00:00:00Z"), At("2026-03-12T00:00:00Z"));
  ASSERT_EQ(report.items.size(), 2u);
  ExpectItem(report, 1, "bob", 7.0 + 10.0 / 3600.0, 2.53);
}

TEST_F(CostReportTest, DefaultsToThisMonthUntilNow) {
  ScriptTimeline();
  // From 03-01 00:00 to now (03-11 05:00): every session in full, S3 up to
  // now. admin: S5 12 h * 3.60 = 43.20. alice: S1 4 h * 0.36 = 1.44 plus S2
  // 0.5 h * 3.60 = 1.80; 4.5 h, 3.24.
  CostReport report = Report(admin_, CostGroupBy::kUser, std::nullopt, std::nullopt);
  EXPECT_EQ(FormatTime(report.from), "2026-03-01T00:00:00.000Z");
  EXPECT_EQ(FormatTime(report.to), "2026-03-11T05:00:00.000Z");
  ASSERT_EQ(report.items.size(), 3u);
  ExpectItem(report, 0, "admin", 12.0, 43.2);
  ExpectItem(report, 1, "alice", 4.5, 3.24);
  // bob: S3 6 h (2.16) + S4 1 h (0.36) + S6 10 s (0.01) = 2.53.
  ExpectItem(report, 2, "bob", 7.0 + 10.0 / 3600.0, 2.53);
  // 43.20 + 3.24 + 2.53
  EXPECT_NEAR(report.total, 48.97, 1e-9);
}

TEST_F(CostReportTest, RefusesAnEmptyOrReversedWindow) {
  CostService costs(*store_, "USD");
  auto same = costs.Report(admin_, {At("2026-03-10T00:00:00Z"), At("2026-03-10T00:00:00Z"),
                                    CostGroupBy::kUser});
  ASSERT_FALSE(same);
  EXPECT_EQ(same.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(same.error().field, "query.from");
}

TEST(CostReportCsvTest, QuotesKeysThatNeedIt) {
  CostReport report;
  report.items = {{"plain", 1, 0.05}, {"a,\"b\"", 0.25, 1}, {"=HYPERLINK()", 2, 2}};
  EXPECT_EQ(CostReportCsv(report),
            "key,hours,cost\r\n"
            "plain,1.0000,0.0500\r\n"
            "\"a,\"\"b\"\"\",0.2500,1.0000\r\n"
            "'=HYPERLINK(),2.0000,2.0000\r\n");
}

TEST(CostReportTimeTest, ParsesDatesAndTimesAndNamesTheField) {
  auto date = ParseReportTime("2026-03-10", "query.from");
  ASSERT_TRUE(date);
  EXPECT_EQ(FormatTime(*date), "2026-03-10T00:00:00.000Z");
  auto time = ParseReportTime("2026-03-10T12:30:00+02:00", "query.to");
  ASSERT_TRUE(time);
  EXPECT_EQ(FormatTime(*time), "2026-03-10T10:30:00.000Z");
  auto bad = ParseReportTime("yesterday", "query.to");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(bad.error().field, "query.to");
}

TEST(CostReportTimeTest, MonthBoundsAreUtcCalendarMonths) {
  EXPECT_EQ(FormatTime(StartOfMonth(At("2026-03-31T23:59:59.999Z"))), "2026-03-01T00:00:00.000Z");
  EXPECT_EQ(FormatTime(StartOfNextMonth(At("2026-12-15T00:00:00Z"))), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(MonthName(At("2026-04-01T00:00:00Z")), "2026-04");
}

TEST(ClippedSecondsTest, ClipsToTheWindowInWholeSeconds) {
  CostSession session;
  session.start = At("2026-03-10T10:00:00Z");
  session.end = At("2026-03-10T11:00:00Z");
  session.price_per_hour = 3.6;
  TimePoint now = At("2026-03-20T00:00:00Z");
  // Window 10:30 to 12:00: 30 min = 1800 s, 1.80.
  EXPECT_EQ(ClippedSeconds(session, At("2026-03-10T10:30:00Z"), At("2026-03-10T12:00:00Z"), now),
            1800);
  EXPECT_NEAR(ClippedCost(session, At("2026-03-10T10:30:00Z"), At("2026-03-10T12:00:00Z"), now),
              1.8, 1e-12);
  // A window after the session: nothing.
  EXPECT_EQ(ClippedSeconds(session, At("2026-03-10T11:00:00Z"), At("2026-03-10T12:00:00Z"), now),
            0);
  // An open session whose start is after `now` (clock skew) counts nothing.
  session.end.reset();
  EXPECT_EQ(ClippedSeconds(session, At("2026-03-01T00:00:00Z"), At("2026-04-01T00:00:00Z"),
                           At("2026-03-10T09:00:00Z")),
            0);
}

}  // namespace
}  // namespace puddle::testing
