// Temporary directories and environment variables for the config tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace puddle::testing {

// A directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "puddle-config-XXXXXX").string();
    char* created = mkdtemp(pattern.data());
    EXPECT_NE(created, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `text` to `name` inside the directory and returns its path.
  std::string Write(const std::string& name, const std::string& text) const {
    std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary);
    out << text;
    return file;
  }

 private:
  std::string path_;
};

// Sets (or, with nullopt, unsets) environment variables and restores them.
class ScopedEnvironment {
 public:
  ScopedEnvironment& Set(const std::string& name, std::optional<std::string> value) {
    const char* old = std::getenv(name.c_str());
    saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
    if (value) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
    return *this;
  }
  ~ScopedEnvironment() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Clears every variable the loader reads, so the host's environment cannot leak in.
inline void ClearConfigEnvironment(ScopedEnvironment& environment) {
  environment.Set("PUDDLE_CONFIG_DIR", std::nullopt)
      .Set("PUDDLE_config_dir", std::nullopt)
      .Set("PUDDLE_DATA_DIR", std::nullopt)
      .Set("PUDDLE_LISTEN", std::nullopt);
}

// Checks every setting of `config` against a default-constructed Config.
inline void ExpectDefaultSettings(const Config& config) {
  const Config defaults;
  EXPECT_EQ(config.data_dir, defaults.data_dir);
  EXPECT_EQ(config.listen, defaults.listen);
  EXPECT_EQ(config.tls_cert_file, defaults.tls_cert_file);
  EXPECT_EQ(config.tls_key_file, defaults.tls_key_file);
  EXPECT_EQ(config.token_secret, defaults.token_secret);
  EXPECT_EQ(config.api_keys_enabled, defaults.api_keys_enabled);
  EXPECT_EQ(config.base_url, defaults.base_url);
  EXPECT_EQ(config.use_public_ip, defaults.use_public_ip);
  EXPECT_EQ(config.systems_domain, defaults.systems_domain);
  EXPECT_EQ(config.trusted_proxies, defaults.trusted_proxies);
  ASSERT_EQ(config.idle_timeout_options.size(), defaults.idle_timeout_options.size());
  for (size_t i = 0; i < defaults.idle_timeout_options.size(); ++i) {
    EXPECT_EQ(config.idle_timeout_options[i].label, defaults.idle_timeout_options[i].label);
    EXPECT_EQ(config.idle_timeout_options[i].minutes, defaults.idle_timeout_options[i].minutes);
  }
  EXPECT_EQ(config.max_keep_alive_minutes, defaults.max_keep_alive_minutes);
  EXPECT_EQ(config.currency, defaults.currency);
  EXPECT_EQ(config.vm_name_regexp, defaults.vm_name_regexp);
  EXPECT_EQ(config.workers, defaults.workers);
  EXPECT_EQ(config.log_level, defaults.log_level);
  EXPECT_EQ(config.database.driver, defaults.database.driver);
  EXPECT_EQ(config.database.host, defaults.database.host);
  EXPECT_EQ(config.database.port, defaults.database.port);
  EXPECT_EQ(config.database.user, defaults.database.user);
  EXPECT_EQ(config.database.dbname, defaults.database.dbname);
  EXPECT_EQ(config.database.sslmode, defaults.database.sslmode);
  EXPECT_EQ(config.database.password, defaults.database.password);
  EXPECT_EQ(config.local.enabled, defaults.local.enabled);
  EXPECT_EQ(config.local.uid_min, defaults.local.uid_min);
  EXPECT_EQ(config.local.uid_max, defaults.local.uid_max);
  EXPECT_EQ(config.local.stop_grace_seconds, defaults.local.stop_grace_seconds);
  EXPECT_EQ(config.local.listen_address, defaults.local.listen_address);
  EXPECT_EQ(config.local.port_min, defaults.local.port_min);
  EXPECT_EQ(config.local.port_max, defaults.local.port_max);
  EXPECT_EQ(config.fake_provider_enabled, defaults.fake_provider_enabled);
}

}  // namespace puddle::testing
