// Money in JSON: rounded to 4 decimals and printed in plain decimal notation,
// never in exponent form such as 5E-2.
#include <gtest/gtest.h>

#include "common/json.h"

namespace puddle::testing {
namespace {

TEST(MoneyJsonTest, PrintsPlainDecimals) {
  boost::json::object object = {{"cost", json::RoundMoney(0.05)},
                                {"small", json::RoundMoney(0.00004999)},
                                {"tiny", json::RoundMoney(0.0001)},
                                {"whole", json::RoundMoney(5.0)},
                                {"rounded", json::RoundMoney(1.23456)},
                                {"negative", -0.25},
                                {"count", 7},
                                {"text", "5E-2 stays text"}};
  EXPECT_EQ(json::Serialize(object),
            "{\"cost\":0.05,\"small\":0,\"tiny\":0.0001,\"whole\":5,\"rounded\":1.2346,"
            "\"negative\":-0.25,\"count\":7,\"text\":\"5E-2 stays text\"}");
}

TEST(MoneyJsonTest, LeavesStringsAndHugeNumbersAlone) {
  EXPECT_EQ(json::PlainNumbers(R"({"a\"1E5":"x\\","b":1E300,"c":[2.5E-1,1E0]})"),
            R"({"a\"1E5":"x\\","b":1E300,"c":[0.25,1]})");
}

}  // namespace
}  // namespace puddle::testing
