#include "auth/auth_service.h"

#include <algorithm>

#include "common/crypto.h"
#include "common/log.h"

namespace puddle {

namespace {

tl::unexpected<Error> BadCredentials() {
  return MakeError(ErrorCode::kUnauthenticated, "invalid username or password");
}

tl::unexpected<Error> NotSignedIn() {
  return MakeError(ErrorCode::kUnauthenticated, "sign in first: the credential is missing, "
                                                "expired or revoked");
}

}  // namespace

AuthService::AuthService(Store& store, AuthOptions options)
    : store_(store),
      options_(std::move(options)),
      password_checks_(std::max(1, options_.concurrent_password_checks)) {}

Status AuthService::ValidatePassword(const std::string& password, const std::string& field) {
  if (password.size() < 8) {
    return MakeError(ErrorCode::kValidationFailed, field + " must be at least 8 characters", field);
  }
  if (password.size() > 1024) {
    return MakeError(ErrorCode::kValidationFailed, field + " must be at most 1024 characters",
                     field);
  }
  return Ok();
}

Status AuthService::CheckRateLimit(const std::string& username, const std::string& address) {
  TimePoint now = store_.clock().Now();
  TimePoint since = now - options_.failure_window;
  return store_.Read([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(int64_t per_address, tx.CountLoginFailures(username, address, since));
    PUDDLE_ASSIGN_OR_RETURN(int64_t per_user, tx.CountLoginFailures(username, std::nullopt, since));
    bool address_limited = per_address >= options_.failures_per_address;
    if (!address_limited && per_user < options_.failures_per_user) return Ok();

    std::optional<std::string> scope;
    if (address_limited) scope = address;
    PUDDLE_ASSIGN_OR_RETURN(auto oldest, tx.OldestLoginFailure(username, scope, since));
    auto retry = oldest ? (*oldest + options_.failure_window) - now : options_.failure_window;
    Error error;
    error.code = ErrorCode::kRateLimited;
    error.message = "too many failed sign-in attempts; try again later";
    error.retry_after_seconds = static_cast<int>(
        std::chrono::duration_cast<std::chrono::seconds>(retry).count() + 1);
    return tl::unexpected(error);
  });
}

Result<User> AuthService::CheckPassword(const std::string& username, const std::string& password,
                                        const std::string& client_address) {
  PUDDLE_RETURN_IF_ERROR(CheckRateLimit(username, client_address));
  PUDDLE_ASSIGN_OR_RETURN(auto user, store_.ReadValue<std::optional<User>>(
                                         [&](Tx& tx) { return tx.GetUserByUsername(username); }));

  if (!password_checks_.try_acquire_for(options_.password_check_wait)) {
    Error error;
    error.code = ErrorCode::kRateLimited;
    error.message = "too many sign-ins are being checked at once; try again in a second";
    error.retry_after_seconds = 1;
    return tl::unexpected(error);
  }
  // An unknown user costs the same argon2id work as a known one.
  bool matches = VerifyPassword(password, user ? user->password_hash : std::string());
  password_checks_.release();
  if (!matches || !user || user->disabled) {
    auto recorded = store_.Write([&](Tx& tx) -> Status {
      PUDDLE_RETURN_IF_ERROR(tx.DeleteLoginFailuresBefore(tx.Now() - options_.failure_window));
      return tx.InsertLoginFailure(username, client_address);
    });
    if (!recorded) return tl::unexpected(recorded.error());
    log::Info("sign-in failed", {{"user", username}, {"address", client_address}});
    return BadCredentials();
  }
  return std::move(*user);
}

Result<std::string> AuthService::IssueCredential(const User& user, CredentialKind kind,
                                                 TimePoint expires_at) {
  std::string value = RandomToken(32);
  Credential credential;
  credential.hash = Sha256Hex(value);
  credential.kind = kind;
  credential.user_id = user.id;
  credential.credential_generation = user.credential_generation;
  credential.created_at = store_.clock().Now();
  credential.last_used_at = credential.created_at;
  credential.expires_at = expires_at;
  PUDDLE_RETURN_IF_ERROR(store_.Write([&](Tx& tx) { return tx.InsertCredential(credential); }));
  return value;
}

Result<SessionGrant> AuthService::Login(const std::string& username, const std::string& password,
                                        const std::string& client_address) {
  PUDDLE_ASSIGN_OR_RETURN(auto user, CheckPassword(username, password, client_address));
  TimePoint expires = store_.clock().Now() + options_.session_lifetime;
  PUDDLE_ASSIGN_OR_RETURN(auto session, IssueCredential(user, CredentialKind::kSession, expires));
  log::Info("signed in", {{"user", user.username}});
  SessionGrant grant;
  grant.csrf_token = CsrfTokenFor(Sha256Hex(session));
  grant.user = std::move(user);
  grant.session = std::move(session);
  return grant;
}

Result<TokenGrant> AuthService::TokenForPassword(const std::string& username,
                                                 const std::string& password,
                                                 const std::string& client_address) {
  PUDDLE_ASSIGN_OR_RETURN(auto user, CheckPassword(username, password, client_address));
  TimePoint expires = store_.clock().Now() + options_.token_lifetime;
  PUDDLE_ASSIGN_OR_RETURN(auto token, IssueCredential(user, CredentialKind::kToken, expires));
  return TokenGrant{std::move(token), expires};
}

Result<TokenGrant> AuthService::TokenForApiKey(const std::string& key_id,
                                               const std::string& secret) {
  if (!options_.api_keys_enabled) {
    return MakeError(ErrorCode::kUnauthenticated, "API keys are disabled on this server");
  }
  PUDDLE_ASSIGN_OR_RETURN(auto key, store_.ReadValue<std::optional<ApiKey>>(
                                        [&](Tx& tx) { return tx.GetApiKey(key_id); }));
  std::string presented = Sha256Hex(secret);
  if (!key || !ConstantTimeEquals(presented, key->secret_hash)) {
    return MakeError(ErrorCode::kUnauthenticated, "invalid API key id or secret");
  }
  PUDDLE_ASSIGN_OR_RETURN(auto user, store_.ReadValue<std::optional<User>>(
                                         [&](Tx& tx) { return tx.GetUser(key->user_id); }));
  if (!user || user->disabled) {
    return MakeError(ErrorCode::kUnauthenticated, "invalid API key id or secret");
  }
  TimePoint expires = store_.clock().Now() + options_.token_lifetime;
  PUDDLE_ASSIGN_OR_RETURN(auto token, IssueCredential(*user, CredentialKind::kToken, expires));
  return TokenGrant{std::move(token), expires};
}

Result<Actor> AuthService::Authenticate(const std::string& value, CredentialKind kind) {
  if (value.empty() || value.size() > 256) return NotSignedIn();
  return AuthenticateHash(Sha256Hex(value), kind);
}

Result<Actor> AuthService::AuthenticateHash(const std::string& hash, CredentialKind kind) {
  TimePoint now = store_.clock().Now();

  Actor actor;
  bool touch = false;
  auto found = store_.Read([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto credential, tx.GetCredential(hash));
    if (!credential || credential->kind != kind || credential->expires_at <= now) {
      return NotSignedIn();
    }
    if (kind == CredentialKind::kSession &&
        credential->last_used_at + options_.session_idle_limit <= now) {
      return NotSignedIn();
    }
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(credential->user_id));
    if (!user || user->disabled ||
        user->credential_generation != credential->credential_generation) {
      return NotSignedIn();
    }
    actor.user_id = user->id;
    actor.username = user->username;
    actor.role = user->role;
    if (kind == CredentialKind::kSession) actor.session_hash = hash;
    if (kind == CredentialKind::kToken) actor.token_hash = hash;
    // Refresh the idle clock at most once a minute, so reads stay reads.
    touch = credential->last_used_at + std::chrono::minutes(1) <= now;
    return Ok();
  });
  if (!found) return tl::unexpected(found.error());

  if (touch) {
    auto touched = store_.Write([&](Tx& tx) { return tx.TouchCredential(hash, now); });
    if (!touched) log::Warning("credential touch failed", {{"error", touched.error().message}});
  }
  return actor;
}

Result<Actor> AuthService::AuthenticateSession(const std::string& session) {
  return Authenticate(session, CredentialKind::kSession);
}

Result<Actor> AuthService::AuthenticateToken(const std::string& token) {
  return Authenticate(token, CredentialKind::kToken);
}

Result<Actor> AuthService::AuthenticateSessionHash(const std::string& session_hash) {
  if (session_hash.empty()) return NotSignedIn();
  return AuthenticateHash(session_hash, CredentialKind::kSession);
}

std::string AuthService::CsrfTokenFor(const std::string& session_hash) const {
  return HmacSha256(options_.token_secret, "csrf:" + session_hash);
}

bool AuthService::CheckCsrf(const std::string& session_hash, const std::string& presented) const {
  return !presented.empty() && ConstantTimeEquals(CsrfTokenFor(session_hash), presented);
}

Status AuthService::Logout(const std::string& session_hash) {
  return store_.Write([&](Tx& tx) { return tx.DeleteCredential(session_hash); });
}

Status AuthService::ChangePassword(const Actor& actor, const std::string& current_password,
                                   const std::string& new_password,
                                   const std::string& client_address) {
  PUDDLE_RETURN_IF_ERROR(ValidatePassword(new_password, "newPassword"));
  auto checked = CheckPassword(actor.username, current_password, client_address);
  if (!checked) {
    Error error = checked.error();
    if (error.code == ErrorCode::kUnauthenticated) {
      error.code = ErrorCode::kValidationFailed;
      error.message = "currentPassword is wrong";
      error.field = "currentPassword";
    }
    return tl::unexpected(error);
  }
  PUDDLE_ASSIGN_OR_RETURN(auto hash, HashPassword(new_password));
  return store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUser(actor.user_id));
    if (!user) return NotSignedIn();
    user->password_hash = hash;
    PUDDLE_RETURN_IF_ERROR(tx.UpdateUser(*user));
    // The credential this request came with keeps working; every other ends.
    const std::string& current =
        actor.session_hash.empty() ? actor.token_hash : actor.session_hash;
    return tx.DeleteCredentialsOfUser(actor.user_id, current);
  });
}

}  // namespace puddle
