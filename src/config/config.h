// Config: Puddle's settings after loading config.yaml, the environment and flags.
//
// Every key is declared once in config/schema.cc with its type, default,
// meaning, secrecy and class (used, accepted and ignored, refused until built).
// A default-constructed Config is the embedded default installation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace puddle {

struct IdleTimeoutOption {
  std::string label;
  int64_t minutes = 0;  // -1 = never
};

struct LocalProviderConfig {
  // Explicit providers.local.enabled; when unset, local is on unless another
  // provider is enabled.
  std::optional<bool> enabled;
  // Unprivileged uids handed to Puddle users' systems (providers.local.uidRange).
  int64_t uid_min = 200000;
  int64_t uid_max = 265535;
  // Seconds between SIGTERM and SIGKILL on stop (providers.local.stopGraceSeconds).
  int64_t stop_grace_seconds = 10;
  // Address products listen on (providers.local.listenAddress).
  std::string listen_address = "127.0.0.2";
  // Ports handed to products (providers.local.portRange), outside the kernel's
  // ephemeral range.
  int64_t port_min = 20000;
  int64_t port_max = 29999;
  // Start-up fails, instead of warning, when the firewall rules for the uid
  // range cannot be installed (providers.local.network.requireFirewall).
  bool require_firewall = false;
  // Each system in its own network namespace where the host allows it
  // (providers.local.network.isolation).
  bool network_isolation = true;
  // IPv4 pool of the namespaces' /30 subnets (providers.local.network.cidr).
  std::string network_cidr = "10.213.0.0/16";
  // IPv4 CIDRs and host:port destinations systems may reach beyond the host
  // (providers.local.network.allow); empty: none.
  std::vector<std::string> network_allow;
  // A private /tmp and /dev/shm for each system (providers.local.privateTmp).
  bool private_tmp = true;
};

// The store: the embedded SQLite file under dataDir, or a PostgreSQL server
// that every Puddle process of the installation shares (db.connection.*).
struct DatabaseConfig {
  // "sqlite" or "postgres" (db.connection.drivername); the db.connection keys
  // below are read only with "postgres".
  std::string driver = "sqlite";
  std::string host;
  int64_t port = 5432;
  std::string user;
  std::string dbname = "puddle";
  // libpq sslmode: disable, allow, prefer, require, verify-ca or verify-full.
  std::string sslmode = "require";
  std::string password;  // secret

  bool IsPostgres() const { return driver == "postgres"; }
};

struct RedisConfig {
  // "tcp" (address is host:port) or "unix" (address is a socket path).
  std::string protocol = "tcp";
  // Empty: the in-process queue. Set: job wake-ups travel through Redis.
  std::string address;
  std::string password;  // secret
  // Puddle's Redis client has no TLS, so true is rejected at start-up.
  bool tls = false;

  bool Enabled() const { return !address.empty(); }
};

// One key as read, for `puddle config check`.
struct ConfigKeyReport {
  std::string key;       // canonical dotted name ("redis.connections.address")
  std::string spelling;  // the spelling found in the file ("redis.connection.address")
  std::string key_class; // "used", "ignored" or "refused"
};

struct Config {
  // File the settings came from; empty when none was found.
  std::string source_path;

  std::string data_dir = "./puddle-data";   // dataDir
  std::string listen = "127.0.0.1:8443";    // listen
  std::string tls_cert_file;                // tls.certFile
  std::string tls_key_file;                 // tls.keyFile
  std::string token_secret;                 // auth.token.secret (secret)
  bool api_keys_enabled = true;             // auth.apiKeys.enabled
  std::string base_url;                     // backend.baseUrl
  bool use_public_ip = true;                // connections.usePublicIP
  std::string systems_domain = "systems.localhost";  // proxy.systemsDomain
  std::vector<std::string> trusted_proxies;          // trustedProxies
  std::vector<IdleTimeoutOption> idle_timeout_options = {
      {"30min", 30}, {"1h", 60}, {"2h", 120}, {"3h", 180}, {"4h", 240}, {"Never", -1}};
  int64_t max_keep_alive_minutes = 240;     // idleTimeout.maxKeepAliveMinutes
  int64_t idle_warning_minutes = 10;         // idleTimeout.warningMinutes
  int64_t idle_check_interval_seconds = 30;  // idleTimeout.checkIntervalSeconds
  int64_t cpu_busy_percent = 10;             // idleTimeout.cpuBusyPercent
  int64_t cpu_window_minutes = 5;            // idleTimeout.cpuWindowMinutes
  std::string currency = "USD";             // costs.currency
  bool budget_stop_running_systems = false;  // costs.budget.stopRunningSystems
  std::string vm_name_regexp = "^[-0-9a-z]*[0-9a-z]$";  // vmNameRegexp
  int64_t workers = 10;                     // redis.workersCount / workers
  std::string log_level = "info";           // logs.level
  DatabaseConfig database;                  // db.connection.*
  RedisConfig redis;                        // redis.connections.*
  LocalProviderConfig local;                // providers.local.*
  bool fake_provider_enabled = false;       // providers.fake.enabled

  // Filled by the loader.
  std::vector<ConfigKeyReport> keys_read;
  std::vector<std::string> warnings;
};

}  // namespace puddle
