#include "storage/sqlite/sqlite_migrations.h"

namespace puddle::sql {

// Times are Unix milliseconds (INTEGER). Money is REAL in the configured currency.
const std::vector<Migration>& SqliteMigrations() {
  static const std::vector<Migration> migrations = {
      {1, "initial schema", R"sql(
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  number INTEGER NOT NULL UNIQUE,
  username TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  disabled INTEGER NOT NULL DEFAULT 0,
  password_hash TEXT NOT NULL DEFAULT '',
  quota_systems INTEGER,
  quota_running_systems INTEGER,
  quota_monthly_budget REAL,
  credential_generation INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX api_keys_user ON api_keys(user_id, created_at);

CREATE TABLE credentials (
  hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('session', 'token')),
  user_id TEXT NOT NULL REFERENCES users(id),
  credential_generation INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX credentials_user ON credentials(user_id);

CREATE TABLE login_failures (
  username TEXT NOT NULL,
  address TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX login_failures_username ON login_failures(username, at);

CREATE TABLE products (
  id TEXT PRIMARY KEY,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE product_versions (
  product_id TEXT NOT NULL REFERENCES products(id),
  version TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (product_id, version)
);

CREATE TABLE images (
  id TEXT PRIMARY KEY,
  product_id TEXT NOT NULL,
  version TEXT NOT NULL,
  provider TEXT NOT NULL,
  status TEXT NOT NULL,
  provider_image TEXT,
  launch TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  FOREIGN KEY (product_id, version) REFERENCES product_versions(product_id, version)
);

CREATE TABLE system_types (
  id TEXT PRIMARY KEY,
  label TEXT NOT NULL,
  cpus INTEGER NOT NULL,
  gpus INTEGER NOT NULL,
  memory_mib INTEGER NOT NULL,
  disk_gib INTEGER NOT NULL,
  price_per_hour REAL NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  max_uptime_minutes INTEGER,
  created_at INTEGER NOT NULL
);

CREATE TABLE systems (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  owner_id TEXT NOT NULL REFERENCES users(id),
  product TEXT NOT NULL,
  version TEXT NOT NULL,
  system_type TEXT NOT NULL,
  image_id TEXT NOT NULL,
  status TEXT NOT NULL,
  vm_status TEXT NOT NULL,
  product_status TEXT NOT NULL,
  price_per_hour REAL NOT NULL,
  idle_timeout_minutes INTEGER NOT NULL,
  provider TEXT NOT NULL,
  provider_state TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT '',
  sealed_token TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER,
  last_activity_at INTEGER
);
CREATE UNIQUE INDEX systems_owner_name ON systems(owner_id, name) WHERE status <> 'deleted';
CREATE INDEX systems_created ON systems(created_at, id);
CREATE INDEX systems_status ON systems(status);

CREATE TABLE operations (
  id TEXT PRIMARY KEY,
  system_id TEXT NOT NULL REFERENCES systems(id),
  action TEXT NOT NULL,
  reason TEXT NOT NULL,
  requested_by TEXT,
  state TEXT NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX operations_system ON operations(system_id, created_at);

CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  system_id TEXT NOT NULL,
  operation_id TEXT NOT NULL,
  state TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  run_after INTEGER NOT NULL,
  claimed_by TEXT NOT NULL DEFAULT '',
  heartbeat_at INTEGER,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_state ON jobs(state, run_after);
CREATE INDEX jobs_system ON jobs(system_id, state);

CREATE TABLE events (
  sequence INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  system_id TEXT NOT NULL,
  operation_id TEXT,
  level TEXT NOT NULL,
  message TEXT NOT NULL,
  time INTEGER NOT NULL
);
CREATE INDEX events_system ON events(system_id, sequence);

CREATE TABLE cost_sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  system_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  product TEXT NOT NULL,
  system_type TEXT NOT NULL,
  start_at INTEGER NOT NULL,
  end_at INTEGER,
  price_per_hour REAL NOT NULL
);
CREATE INDEX cost_sessions_system ON cost_sessions(system_id, start_at);
CREATE INDEX cost_sessions_user ON cost_sessions(user_id, start_at);
)sql"},
      // One row per periodic loop (reconcile, reaper): the process holding it
      // and when its claim expires, in Unix milliseconds.
      {2, "leases", R"sql(
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
)sql"},
      // Access to systems: one-time codes (kind 'code') and system cookies
      // (kind 'cookie'), by the SHA-256 of their value. Each is bound to the
      // user, the system and the browser session (its hash) it came from.
      {3, "system access", R"sql(
CREATE TABLE system_access (
  hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('code', 'cookie')),
  system_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  session_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX system_access_expires ON system_access(expires_at);
)sql"},
      // What the idle loop knows about each system's activity: the latest
      // time each signal (proxy, product, CPU) saw work, the latest keep-alive
      // and the latest stop warning. Times in Unix milliseconds; booleans 0/1.
      {4, "system activity", R"sql(
CREATE TABLE system_activity (
  system_id TEXT PRIMARY KEY,
  proxy_active_at INTEGER,
  product_busy INTEGER,
  product_busy_since INTEGER,
  product_active_at INTEGER,
  product_checked_at INTEGER,
  cpu_busy INTEGER,
  cpu_percent REAL,
  cpu_busy_since INTEGER,
  cpu_active_at INTEGER,
  cpu_checked_at INTEGER,
  keep_alive_at INTEGER,
  keep_alive_until INTEGER,
  warned_at INTEGER,
  warned_stop_at INTEGER,
  warned_reason TEXT NOT NULL DEFAULT ''
);
)sql"},
      // The monthly budget warning each user was sent, so it goes out once
      // per user per UTC month ("2026-03"); sent_at in Unix milliseconds.
      {5, "budget warnings", R"sql(
CREATE TABLE budget_warnings (
  user_id TEXT NOT NULL REFERENCES users(id),
  month TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, month)
);
)sql"},
  };
  return migrations;
}

}  // namespace puddle::sql
