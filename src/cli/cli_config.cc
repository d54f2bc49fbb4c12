#include "cli/cli_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <yaml-cpp/yaml.h>

namespace puddle::cli {
namespace {

constexpr char kUrlKey[] = "url";
constexpr char kFingerprintKey[] = "fingerprintSha256";
constexpr char kCaCertKey[] = "caCert";
constexpr char kApiKeyIdKey[] = "apiKeyId";
constexpr char kApiSecretKeyKey[] = "apiSecretKey";

std::string ErrnoText() { return std::strerror(errno); }

Result<std::string> ReadStringKey(const YAML::Node& root, const char* key,
                                  const std::filesystem::path& path) {
  const YAML::Node node = root[key];
  if (!node || node.IsNull()) return std::string();
  if (!node.IsScalar()) {
    return InternalError(path.string() + ": \"" + key + "\" must be a string");
  }
  return node.as<std::string>();
}

// Creates each missing directory of `directory` with mode 0700.
Status CreateDirectories(const std::filesystem::path& directory) {
  std::filesystem::path partial;
  for (const auto& part : directory) {
    partial /= part;
    std::error_code ignored;
    if (std::filesystem::is_directory(partial, ignored)) continue;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return InternalError("create directory " + partial.string() + ": " + ErrnoText());
    }
  }
  if (chmod(directory.c_str(), 0700) != 0) {
    return InternalError("set mode 0700 on " + directory.string() + ": " + ErrnoText());
  }
  return Ok();
}

std::string RenderYaml(const CliConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << kUrlKey << YAML::Value << YAML::DoubleQuoted << config.url;
  out << YAML::Key << kFingerprintKey << YAML::Value << YAML::DoubleQuoted
      << config.fingerprint_sha256;
  if (!config.ca_cert.empty()) {
    out << YAML::Key << kCaCertKey << YAML::Value << YAML::DoubleQuoted << config.ca_cert;
  }
  out << YAML::Key << kApiKeyIdKey << YAML::Value << YAML::DoubleQuoted << config.api_key_id;
  out << YAML::Key << kApiSecretKeyKey << YAML::Value << YAML::DoubleQuoted
      << config.api_secret_key;
  out << YAML::EndMap;
  return std::string("# Written by `puddle login`. It contains an API key: keep it private.\n") +
         out.c_str() + "\n";
}

Status WriteAll(int fd, const std::string& text, const std::filesystem::path& path) {
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InternalError("write " + path.string() + ": " + ErrnoText());
    written += static_cast<size_t>(n);
  }
  return Ok();
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
}

Result<std::filesystem::path> CliConfigPath(const EnvLookup& env) {
  if (auto xdg = env("XDG_CONFIG_HOME"); xdg && std::filesystem::path(*xdg).is_absolute()) {
    return std::filesystem::path(*xdg) / "puddle" / "cli.yaml";
  }
  if (auto home = env("HOME")) {
    return std::filesystem::path(*home) / ".config" / "puddle" / "cli.yaml";
  }
  return InternalError("cannot find the configuration directory: set HOME or XDG_CONFIG_HOME");
}

Result<std::optional<CliConfig>> ReadCliConfig(const std::filesystem::path& path) {
  std::error_code exists_error;
  if (!std::filesystem::exists(path, exists_error)) {
    if (exists_error) return InternalError("read " + path.string() + ": " + exists_error.message());
    return std::optional<CliConfig>();
  }

  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::Exception& error) {
    return InternalError("read " + path.string() + ": " + error.what() +
                         "; run `puddle login` again to rewrite it");
  }
  if (!root.IsMap()) {
    return InternalError(path.string() + " is not a YAML map; run `puddle login` again");
  }

  CliConfig config;
  std::pair<const char*, std::string*> fields[] = {
      {kUrlKey, &config.url},
      {kFingerprintKey, &config.fingerprint_sha256},
      {kCaCertKey, &config.ca_cert},
      {kApiKeyIdKey, &config.api_key_id},
      {kApiSecretKeyKey, &config.api_secret_key},
  };
  for (auto& [key, target] : fields) {
    auto value = ReadStringKey(root, key, path);
    if (!value) return tl::unexpected(value.error());
    *target = std::move(*value);
  }
  return std::optional<CliConfig>(std::move(config));
}

std::string CheckCliConfigPermissions(const std::filesystem::path& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return "";
  if ((info.st_mode & 077) == 0) return "";
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(info.st_mode & 07777));
  return path.string() + " has mode " + mode +
         " and other users may read its API key; run `chmod 600 " + path.string() + "`";
}

Status WriteCliConfig(const std::filesystem::path& path, const CliConfig& config) {
  if (auto created = CreateDirectories(path.parent_path()); !created) return created;

  // Write a private temporary file next to the target and rename it over, so
  // the key is never in a file with wider permissions or half written.
  std::filesystem::path temporary = path;
  temporary += ".tmp-" + std::to_string(getpid());
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return InternalError("create " + temporary.string() + ": " + ErrnoText());

  Status status = Ok();
  if (fchmod(fd, 0600) != 0) {
    status = InternalError("set mode 0600 on " + temporary.string() + ": " + ErrnoText());
  }
  if (status) status = WriteAll(fd, RenderYaml(config), temporary);
  if (status && fsync(fd) != 0) {
    status = InternalError("flush " + temporary.string() + ": " + ErrnoText());
  }
  close(fd);
  if (status && rename(temporary.c_str(), path.c_str()) != 0) {
    status =
        InternalError("rename " + temporary.string() + " to " + path.string() + ": " + ErrnoText());
  }
  if (!status) unlink(temporary.c_str());
  return status;
}

Status RemoveCliConfig(const std::filesystem::path& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return InternalError("delete " + path.string() + ": " + ErrnoText());
  }
  return Ok();
}

}  // namespace puddle::cli
