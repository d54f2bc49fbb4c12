#include "common/json.h"

#include <gtest/gtest.h>

namespace puddle::json {
namespace {

TEST(JsonTest, MalformedBodyIsInvalidJson) {
  auto parsed = ParseObject("{\"name\":");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidJson);
}

TEST(JsonTest, NonObjectBodyIsInvalidJson) {
  auto parsed = ParseObject("[1,2]");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidJson);
}

TEST(JsonTest, UnknownFieldIsNamedWithPrefix) {
  auto parsed = ParseObject(R"({"systems": 1, "bogus": 2})");
  ASSERT_TRUE(parsed.has_value());
  auto status = RejectUnknownFields(*parsed, {"systems"}, "quota.");
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kUnknownField);
  EXPECT_EQ(status.error().field, "quota.bogus");
}

TEST(JsonTest, WrongTypeIsValidationFailedOnField) {
  auto parsed = ParseObject(R"({"name": 5})");
  ASSERT_TRUE(parsed.has_value());
  auto name = RequiredString(*parsed, "name");
  ASSERT_FALSE(name.has_value());
  EXPECT_EQ(name.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(name.error().field, "name");
}

TEST(JsonTest, IntegersAcceptWholeDoublesOnly) {
  auto parsed = ParseObject(R"({"a": 30.0, "b": 30.5})");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(OptionalInt(*parsed, "a").value(), 30);
  EXPECT_FALSE(OptionalInt(*parsed, "b").has_value());
}

}  // namespace
}  // namespace puddle::json
