// UserService: admin management of users and everyone's own API keys.
//
// Thread-safe. Access checks live here, so handlers stay thin.
#pragma once

#include <optional>
#include <string>

#include "model/user.h"
#include "services/actor.h"
#include "storage/store.h"

namespace puddle {

// Changes to a user's limits. An outer nullopt leaves a limit as it is; an
// inner nullopt removes it (no limit).
struct QuotaPatch {
  std::optional<std::optional<int64_t>> systems;
  std::optional<std::optional<int64_t>> running_systems;
  std::optional<std::optional<double>> monthly_budget;
};

struct UserPatch {
  std::optional<Role> role;
  std::optional<bool> disabled;
  QuotaPatch quota;
};

struct NewApiKey {
  ApiKey key;
  std::string secret;  // shown once
};

class UserService {
 public:
  explicit UserService(Store& store) : store_(store) {}

  Result<User> Create(const Actor& actor, const std::string& username, const std::string& password,
                      Role role);
  Result<User> Get(const Actor& actor, const std::string& id);
  Result<Page<User>> List(const Actor& actor, const PageRequest& page);
  // Changing role or disabling keeps at least one enabled admin. Disabling
  // ends the user's sessions, tokens and keys. Quota limits must be
  // non-negative (validation_failed on "quota.runningSystems" and so on).
  Result<User> Update(const Actor& actor, const std::string& id, const UserPatch& patch);
  // Sets a new password and ends the user's sessions, tokens and keys.
  Status SetPassword(const Actor& actor, const std::string& id, const std::string& password);

  Result<NewApiKey> CreateApiKey(const Actor& actor, const std::string& name);
  Result<Page<ApiKey>> ListApiKeys(const Actor& actor, const PageRequest& page);
  // Deletes one of the actor's keys, or, for admins, `owner_id`'s key.
  Status DeleteApiKey(const Actor& actor, const std::string& owner_id, const std::string& key_id);

  // Creates the bootstrap admin when there are no users. Returns the password
  // it set when it created one.
  Result<std::optional<std::string>> EnsureBootstrapAdmin(const std::string& password);
  // Offline recovery: sets `username`'s password, ending their credentials.
  Status ResetPassword(const std::string& username, const std::string& password);

 private:
  Status RequireAdmin(const Actor& actor) const;
  // Bumps the credential generation and deletes every credential and key.
  static Status RevokeEverything(Tx& tx, User& user);

  Store& store_;
};

}  // namespace puddle
