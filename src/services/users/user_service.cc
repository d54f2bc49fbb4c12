#include "services/users/user_service.h"

#include <cmath>
#include <regex>

#include "auth/auth_service.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/log.h"

namespace puddle {

namespace {

Status ValidateUsername(const std::string& username) {
  static const std::regex kPattern("^[a-z0-9][a-z0-9._@-]{0,63}$");
  if (!std::regex_match(username, kPattern)) {
    return MakeError(ErrorCode::kValidationFailed,
                     "username must be 1 to 64 characters: lowercase letters, digits and . _ @ -, "
                     "starting with a letter or digit",
                     "username");
  }
  return Ok();
}

tl::unexpected<Error> UserNotFound(const std::string& id) {
  return MakeError(ErrorCode::kNotFound, "user \"" + id + "\" not found");
}

}  // namespace

Status UserService::RequireAdmin(const Actor& actor) const {
  if (!actor.IsAdmin()) return MakeError(ErrorCode::kForbidden, "only admins may manage users");
  return Ok();
}

Status UserService::RevokeEverything(Tx& tx, User& user) {
  user.credential_generation += 1;
  PUDDLE_RETURN_IF_ERROR(tx.UpdateUser(user));
  PUDDLE_RETURN_IF_ERROR(tx.DeleteCredentialsOfUser(user.id, ""));
  return tx.DeleteApiKeysOfUser(user.id);
}

Result<User> UserService::Create(const Actor& actor, const std::string& username,
                                 const std::string& password, Role role) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  PUDDLE_RETURN_IF_ERROR(ValidateUsername(username));
  PUDDLE_RETURN_IF_ERROR(AuthService::ValidatePassword(password, "password"));
  PUDDLE_ASSIGN_OR_RETURN(auto hash, HashPassword(password));
  auto created = store_.WriteValue<User>([&](Tx& tx) {
    User user;
    user.id = NewId(16);
    user.username = username;
    user.role = role;
    user.password_hash = hash;
    user.created_at = tx.Now();
    return tx.InsertUser(user);
  });
  if (created) log::Info("user created", {{"user", username}, {"by", actor.username}});
  return created;
}

Result<User> UserService::Get(const Actor& actor, const std::string& id) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  PUDDLE_ASSIGN_OR_RETURN(auto user, store_.ReadValue<std::optional<User>>(
                                         [&](Tx& tx) { return tx.GetUser(id); }));
  if (!user) return UserNotFound(id);
  return std::move(*user);
}

Result<Page<User>> UserService::List(const Actor& actor, const PageRequest& page) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  return store_.ReadValue<Page<User>>([&](Tx& tx) { return tx.ListUsers(page); });
}

namespace {

Status ValidateLimit(const std::optional<std::optional<int64_t>>& limit, const char* field) {
  if (limit && *limit && **limit < 0) {
    return MakeError(ErrorCode::kValidationFailed,
                     std::string(field) + " must be a non-negative integer or null (no limit)",
                     field);
  }
  return Ok();
}

Status ValidateQuota(const QuotaPatch& quota) {
  PUDDLE_RETURN_IF_ERROR(ValidateLimit(quota.systems, "quota.systems"));
  PUDDLE_RETURN_IF_ERROR(ValidateLimit(quota.running_systems, "quota.runningSystems"));
  if (quota.monthly_budget && *quota.monthly_budget) {
    double budget = **quota.monthly_budget;
    if (!std::isfinite(budget) || budget < 0 || budget > 1e12) {
      return MakeError(ErrorCode::kValidationFailed,
                       "quota.monthlyBudget must be a number from 0 to 1e12 or null (no limit)",
                       "quota.monthlyBudget");
    }
  }
  return Ok();
}

}  // namespace

Result<User> UserService::Update(const Actor& actor, const std::string& id,
                                 const UserPatch& patch) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  PUDDLE_RETURN_IF_ERROR(ValidateQuota(patch.quota));
  return store_.WriteValue<User>([&](Tx& tx) -> Result<User> {
    // Locked, so a change of quota waits for quota checks under way.
    PUDDLE_ASSIGN_OR_RETURN(auto found, tx.GetUserForUpdate(id));
    if (!found) return UserNotFound(id);
    User user = std::move(*found);

    bool was_active_admin = user.role == Role::kAdmin && !user.disabled;
    bool disabling = patch.disabled.value_or(user.disabled) && !user.disabled;
    if (patch.role) user.role = *patch.role;
    if (patch.disabled) user.disabled = *patch.disabled;
    if (patch.quota.systems) user.quota.systems = *patch.quota.systems;
    if (patch.quota.running_systems) user.quota.running_systems = *patch.quota.running_systems;
    if (patch.quota.monthly_budget) user.quota.monthly_budget = *patch.quota.monthly_budget;
    bool is_active_admin = user.role == Role::kAdmin && !user.disabled;
    if (was_active_admin && !is_active_admin) {
      PUDDLE_ASSIGN_OR_RETURN(int64_t admins, tx.CountEnabledAdmins());
      if (admins <= 1) {
        return ConflictError("the last enabled admin cannot be demoted or disabled",
                             user.disabled ? "disabled" : "admin");
      }
    }
    if (disabling) {
      PUDDLE_RETURN_IF_ERROR(RevokeEverything(tx, user));
    } else {
      PUDDLE_RETURN_IF_ERROR(tx.UpdateUser(user));
    }
    return user;
  });
}

Status UserService::SetPassword(const Actor& actor, const std::string& id,
                                const std::string& password) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  PUDDLE_RETURN_IF_ERROR(AuthService::ValidatePassword(password, "password"));
  PUDDLE_ASSIGN_OR_RETURN(auto hash, HashPassword(password));
  return store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(id));
    if (!user) return UserNotFound(id);
    user->password_hash = hash;
    return RevokeEverything(tx, *user);
  });
}

Result<NewApiKey> UserService::CreateApiKey(const Actor& actor, const std::string& name) {
  if (name.empty() || name.size() > 100) {
    return MakeError(ErrorCode::kValidationFailed, "name must be 1 to 100 characters", "name");
  }
  NewApiKey created;
  created.secret = RandomToken(32);
  created.key.id = NewId(20);
  created.key.user_id = actor.user_id;
  created.key.name = name;
  created.key.secret_hash = Sha256Hex(created.secret);
  PUDDLE_RETURN_IF_ERROR(store_.Write([&](Tx& tx) {
    created.key.created_at = tx.Now();
    return tx.InsertApiKey(created.key);
  }));
  log::Info("API key created", {{"user", actor.username}, {"key_id", created.key.id}});
  return created;
}

Result<Page<ApiKey>> UserService::ListApiKeys(const Actor& actor, const PageRequest& page) {
  return store_.ReadValue<Page<ApiKey>>(
      [&](Tx& tx) { return tx.ListApiKeys(actor.user_id, page); });
}

Status UserService::DeleteApiKey(const Actor& actor, const std::string& owner_id,
                                 const std::string& key_id) {
  if (owner_id != actor.user_id) PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  PUDDLE_ASSIGN_OR_RETURN(bool deleted, store_.WriteValue<bool>([&](Tx& tx) {
    return tx.DeleteApiKey(key_id, owner_id);
  }));
  if (!deleted) return MakeError(ErrorCode::kNotFound, "API key \"" + key_id + "\" not found");
  return Ok();
}

Result<std::optional<std::string>> UserService::EnsureBootstrapAdmin(const std::string& password) {
  PUDDLE_ASSIGN_OR_RETURN(auto hash, HashPassword(password));
  return store_.WriteValue<std::optional<std::string>>(
      [&](Tx& tx) -> Result<std::optional<std::string>> {
        PUDDLE_ASSIGN_OR_RETURN(auto users, tx.ListUsers(PageRequest{1, ""}));
        if (!users.items.empty()) return std::optional<std::string>();
        User admin;
        admin.id = NewId(16);
        admin.username = "admin";
        admin.role = Role::kAdmin;
        admin.password_hash = hash;
        admin.created_at = tx.Now();
        PUDDLE_RETURN_IF_ERROR(tx.InsertUser(admin));
        return std::optional<std::string>(password);
      });
}

Status UserService::ResetPassword(const std::string& username, const std::string& password) {
  PUDDLE_RETURN_IF_ERROR(AuthService::ValidatePassword(password, "password"));
  PUDDLE_ASSIGN_OR_RETURN(auto hash, HashPassword(password));
  return store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUserByUsername(username));
    if (!user) return MakeError(ErrorCode::kNotFound, "user \"" + username + "\" not found");
    user->password_hash = hash;
    user->disabled = false;
    return RevokeEverything(tx, *user);
  });
}

}  // namespace puddle
