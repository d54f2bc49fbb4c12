// The catalog admins manage: products, their versions, images and system types.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/fwd.hpp>

#include "common/result.h"
#include "common/time.h"

namespace puddle {

// How the local provider runs an image: an argv run without a shell.
// Placeholders: {port} {address} {basePath} {dataDir} {systemId}; {token} only in env values.
struct LaunchSpec {
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string health_path = "api/status";  // relative to the base path
  std::string base_path_mode = "prefix";   // "prefix" or "strip"
  int start_timeout_seconds = 120;
};

struct Image {
  std::string id;
  std::string product;
  std::string version;
  std::string provider = "local";
  std::string status = "ready";  // ready building failed disabled
  std::optional<std::string> provider_image;
  LaunchSpec launch;
  TimePoint created_at;
};

struct ProductVersion {
  std::string version;
  bool enabled = true;
  TimePoint created_at;
};

struct Product {
  std::string id;
  std::string label;
  std::vector<ProductVersion> versions;  // newest first
  TimePoint created_at;
};

struct SystemType {
  std::string id;
  std::string label;
  int64_t cpus = 1;
  int64_t gpus = 0;
  int64_t memory_mib = 1024;
  int64_t disk_gib = 10;
  double price_per_hour = 0;
  bool enabled = true;
  std::optional<int64_t> max_uptime_minutes;
  TimePoint created_at;
};

// The API's and the store's JSON form of a LaunchSpec:
// {"command":[...],"env":{...},"healthPath","basePathMode","startTimeoutSeconds"}.
boost::json::object LaunchSpecToJson(const LaunchSpec& spec);
// Validates as it reads; errors name the field under `prefix` ("launch.command").
Result<LaunchSpec> LaunchSpecFromJson(const boost::json::value& value,
                                      const std::string& prefix = "launch");

}  // namespace puddle
