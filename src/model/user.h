// Users, API keys and the credentials that authenticate requests.
#pragma once

#include <optional>
#include <string>

#include "common/time.h"

namespace puddle {

enum class Role { kAdmin, kUser };

inline const char* RoleName(Role role) { return role == Role::kAdmin ? "admin" : "user"; }

// Limits per user; nullopt means no limit.
struct Quota {
  std::optional<int64_t> systems;
  std::optional<int64_t> running_systems;
  std::optional<double> monthly_budget;
};

struct User {
  std::string id;
  std::string username;
  Role role = Role::kUser;
  bool disabled = false;
  // argon2id hash; empty for users who cannot sign in with a password.
  std::string password_hash;
  Quota quota;
  TimePoint created_at;
  // Bumped when a password is reset or the user is disabled; credentials
  // issued under an older generation stop working.
  int64_t credential_generation = 0;
};

struct ApiKey {
  std::string id;
  std::string user_id;
  std::string name;
  std::string secret_hash;  // SHA-256 hex of the secret
  TimePoint created_at;
};

enum class CredentialKind { kSession, kToken };

// A browser session or an API token, stored by the SHA-256 of its value.
struct Credential {
  std::string hash;
  CredentialKind kind = CredentialKind::kSession;
  std::string user_id;
  int64_t credential_generation = 0;
  TimePoint created_at;
  TimePoint last_used_at;
  TimePoint expires_at;
};

}  // namespace puddle
