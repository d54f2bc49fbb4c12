#include "cli/cli_config.h"

#include <sys/stat.h>

#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "cli_harness.h"

namespace puddle::cli {
namespace {

using testing::TempDir;

mode_t ModeOf(const std::filesystem::path& path) {
  struct stat info {};
  EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

EnvLookup MapEnvironment(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto found = vars.find(name);
    if (found == vars.end() || found->second.empty()) return std::nullopt;
    return found->second;
  };
}

CliConfig SampleConfig() {
  CliConfig config;
  config.url = "https://puddle.example.com:8443";
  config.fingerprint_sha256 =
      "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"
      "67:89";
  config.api_key_id = "key-1";
  config.api_secret_key = "secret: with \"quotes\" and # hash";
  return config;
}

TEST(CliConfigTest, WritesPrivateFileAndReadsItBack) {
  TempDir dir;
  const auto path = dir.path() / "config" / "puddle" / "cli.yaml";

  ASSERT_TRUE(WriteCliConfig(path, SampleConfig()));

  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(path.parent_path()), 0700u);
  auto read = ReadCliConfig(path);
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->url, SampleConfig().url);
  EXPECT_EQ((*read)->fingerprint_sha256, SampleConfig().fingerprint_sha256);
  EXPECT_EQ((*read)->api_key_id, "key-1");
  EXPECT_EQ((*read)->api_secret_key, SampleConfig().api_secret_key);
  EXPECT_EQ((*read)->ca_cert, "");
  EXPECT_EQ(CheckCliConfigPermissions(path), "");
}

TEST(CliConfigTest, RewriteKeepsModeAndTightensDirectory) {
  TempDir dir;
  const auto path = dir.path() / "puddle" / "cli.yaml";
  std::filesystem::create_directories(path.parent_path());
  chmod(path.parent_path().c_str(), 0755);
  { std::ofstream(path) << "url: old\n"; }
  chmod(path.c_str(), 0644);

  ASSERT_TRUE(WriteCliConfig(path, SampleConfig()));

  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(path.parent_path()), 0700u);
  auto read = ReadCliConfig(path);
  ASSERT_TRUE(read);
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->api_key_id, "key-1");
  // No temporary file is left beside it.
  int entries = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator(path.parent_path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(CliConfigTest, MissingFileIsNotAnError) {
  TempDir dir;
  auto read = ReadCliConfig(dir.path() / "absent.yaml");
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->has_value());
}

TEST(CliConfigTest, MalformedFileNamesPath) {
  TempDir dir;
  const auto path = dir.path() / "cli.yaml";
  { std::ofstream(path) << "url: [unclosed\n"; }
  auto read = ReadCliConfig(path);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find(path.string()), std::string::npos);
}

TEST(CliConfigTest, WarnsWhenOthersCanRead) {
  TempDir dir;
  const auto path = dir.path() / "cli.yaml";
  ASSERT_TRUE(WriteCliConfig(path, SampleConfig()));
  chmod(path.c_str(), 0644);
  std::string warning = CheckCliConfigPermissions(path);
  EXPECT_NE(warning.find("0644"), std::string::npos) << warning;
  EXPECT_NE(warning.find("chmod 600"), std::string::npos) << warning;
}

TEST(CliConfigTest, PathFollowsXdgThenHome) {
  auto xdg = CliConfigPath(MapEnvironment({{"XDG_CONFIG_HOME", "/x/cfg"}, {"HOME", "/h"}}));
  ASSERT_TRUE(xdg);
  EXPECT_EQ(*xdg, std::filesystem::path("/x/cfg/puddle/cli.yaml"));

  // A relative XDG_CONFIG_HOME is ignored, as the XDG base directory spec says.
  auto relative = CliConfigPath(MapEnvironment({{"XDG_CONFIG_HOME", "cfg"}, {"HOME", "/h"}}));
  ASSERT_TRUE(relative);
  EXPECT_EQ(*relative, std::filesystem::path("/h/.config/puddle/cli.yaml"));

  EXPECT_FALSE(CliConfigPath(MapEnvironment({})));
}

TEST(CliConfigTest, RemoveDeletesAndToleratesAbsence) {
  TempDir dir;
  const auto path = dir.path() / "cli.yaml";
  ASSERT_TRUE(WriteCliConfig(path, SampleConfig()));
  ASSERT_TRUE(RemoveCliConfig(path));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(RemoveCliConfig(path));
}

}  // namespace
}  // namespace puddle::cli
