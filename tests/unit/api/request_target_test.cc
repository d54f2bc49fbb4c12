#include "api/request_target.h"

#include <gtest/gtest.h>

namespace puddle::http {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

TEST(RequestTargetTest, DecodesPathAndQuery) {
  auto target = ParseRequestTarget("/api/v1/systems/a%20b?limit=5&name=x%26y&q=c+d&empty=&flag");

  ASSERT_TRUE(target) << target.error().message;
  EXPECT_EQ(target->path, "/api/v1/systems/a b");
  EXPECT_EQ(target->query, (Query{{"limit", "5"}, {"name", "x&y"}, {"q", "c d"}, {"empty", ""},
                                  {"flag", ""}}));
}

TEST(RequestTargetTest, KeepsRepeatedParametersInOrder) {
  auto target = ParseRequestTarget("/x?b=2&a=1&b=3");

  ASSERT_TRUE(target);
  EXPECT_EQ(target->query, (Query{{"b", "2"}, {"a", "1"}, {"b", "3"}}));
}

TEST(RequestTargetTest, EmptyQueryHasNoParameters) {
  auto with_mark = ParseRequestTarget("/x?");
  auto without = ParseRequestTarget("/x");

  ASSERT_TRUE(with_mark);
  EXPECT_TRUE(with_mark->query.empty());
  ASSERT_TRUE(without);
  EXPECT_TRUE(without->query.empty());
}

TEST(RequestTargetTest, KeepsDotSegmentsAndEncodedSlashes) {
  auto target = ParseRequestTarget("/static/../a%2Fb");

  ASSERT_TRUE(target);
  EXPECT_EQ(target->path, "/static/../a/b");
}

TEST(RequestTargetTest, RejectsWhatIsNotOriginForm) {
  for (const char* bad : {"", "*", "http://example.com/x", "relative/path", "/a%zz", "/a%2",
                          "/a b", "/nul%00byte"}) {
    auto target = ParseRequestTarget(bad);

    ASSERT_FALSE(target) << bad;
    EXPECT_EQ(target.error().code, ErrorCode::kValidationFailed) << bad;
  }
}

}  // namespace
}  // namespace puddle::http
