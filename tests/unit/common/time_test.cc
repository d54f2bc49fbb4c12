#include "common/time.h"

#include <gtest/gtest.h>

namespace puddle {
namespace {

TEST(TimeTest, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatTime(FromUnixMillis(1764881423125)), "2025-12-04T20:50:23.125Z");
  EXPECT_EQ(FormatTime(FromUnixMillis(0)), "1970-01-01T00:00:00.000Z");
}

TEST(TimeTest, ParsesWhatItFormats) {
  auto time = FromUnixMillis(1764881423125);
  auto parsed = ParseTime(FormatTime(time));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, time);
}

TEST(TimeTest, ParsesOffsetsAndPlainDates) {
  EXPECT_EQ(ParseTime("2025-12-04T21:50:23+01:00"), ParseTime("2025-12-04T20:50:23Z"));
  EXPECT_EQ(ParseTime("2025-12-04"), ParseTime("2025-12-04T00:00:00Z"));
}

TEST(TimeTest, RejectsMalformedText) {
  EXPECT_FALSE(ParseTime("2025-13-04").has_value());
  EXPECT_FALSE(ParseTime("2025-12-04T20:50").has_value());
  EXPECT_FALSE(ParseTime("2025-12-04T20:50:23").has_value());
  EXPECT_FALSE(ParseTime("yesterday").has_value());
  EXPECT_FALSE(ParseTime("2025-12-04T20:50:23Zjunk").has_value());
}

}  // namespace
}  // namespace puddle
