#include "config/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "config/loader.h"
#include "config/schema.h"
#include "test_support.h"

namespace puddle::config {
namespace {

using puddle::testing::ExpectDefaultSettings;

std::string ReadSourceFile(const std::string& relative_path) {
  std::ifstream file(std::string(PUDDLE_SOURCE_DIR) + "/" + relative_path, std::ios::binary);
  EXPECT_TRUE(file.good()) << relative_path << " is missing";
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(ConfigReferenceTest, DocMatchesSchema) {
  EXPECT_TRUE(ReadSourceFile("docs/configuration.md") == RenderReferenceMarkdown())
      << "docs/configuration.md differs from the schema; regenerate it with "
         "`build/src/config/puddle_config_reference markdown > docs/configuration.md`";
}

TEST(ConfigReferenceTest, ExampleMatchesSchema) {
  EXPECT_TRUE(ReadSourceFile("packaging/config.example.yaml") == RenderExampleConfig())
      << "packaging/config.example.yaml differs from the schema; regenerate it with "
         "`build/src/config/puddle_config_reference example > packaging/config.example.yaml`";
}

TEST(ConfigReferenceTest, ExampleLoadsAsDefaults) {
  puddle::testing::ScopedEnvironment environment;
  puddle::testing::ClearConfigEnvironment(environment);
  std::string path = std::string(PUDDLE_SOURCE_DIR) + "/packaging/config.example.yaml";
  LoadOptions options;
  options.config_path = path;
  auto loaded = LoadConfig(options);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ExpectDefaultSettings(*loaded);
  EXPECT_TRUE(loaded->warnings.empty());
  EXPECT_FALSE(loaded->keys_read.empty());
}

TEST(ConfigReferenceTest, DocListsEveryKeyAndSpelling) {
  std::string markdown = RenderReferenceMarkdown();
  for (const PartDefinition& part : ConfigParts()) {
    for (const KeyDefinition& key : part.keys) {
      EXPECT_THAT(markdown, ::testing::HasSubstr("| `" + std::string(key.key) + "` |"));
      for (const std::string& spelling : key.spellings) {
        EXPECT_THAT(markdown, ::testing::HasSubstr("`" + spelling + "`"));
      }
    }
  }
}

}  // namespace
}  // namespace puddle::config
