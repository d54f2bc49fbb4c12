// The idleTimeout keys of the idle loop: defaults, values read, and ranges.
#include <gtest/gtest.h>

#include "config/loader.h"

namespace puddle {
namespace {

TEST(IdleConfig, Defaults) {
  Config config;
  EXPECT_EQ(config.idle_warning_minutes, 10);
  EXPECT_EQ(config.idle_check_interval_seconds, 30);
  EXPECT_EQ(config.cpu_busy_percent, 10);
  EXPECT_EQ(config.cpu_window_minutes, 5);
}

TEST(IdleConfig, KeysRead) {
  auto loaded = LoadConfigFromText(
      "idleTimeout:\n"
      "  warningMinutes: 15\n"
      "  checkIntervalSeconds: 2\n"
      "  cpuBusyPercent: 150\n"
      "  cpuWindowMinutes: 10\n",
      "config.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->idle_warning_minutes, 15);
  EXPECT_EQ(loaded->idle_check_interval_seconds, 2);
  EXPECT_EQ(loaded->cpu_busy_percent, 150);
  EXPECT_EQ(loaded->cpu_window_minutes, 10);
}

TEST(IdleConfig, OutOfRangeRejected) {
  for (const char* text : {"idleTimeout:\n  warningMinutes: 0\n",
                           "idleTimeout:\n  checkIntervalSeconds: 0\n",
                           "idleTimeout:\n  checkIntervalSeconds: 3601\n",
                           "idleTimeout:\n  cpuBusyPercent: 0\n",
                           "idleTimeout:\n  cpuWindowMinutes: -5\n"}) {
    auto loaded = LoadConfigFromText(text, "config.yaml");
    ASSERT_FALSE(loaded) << text;
    EXPECT_NE(loaded.error().message.find("must be between"), std::string::npos)
        << loaded.error().message;
  }
}

}  // namespace
}  // namespace puddle
