// AuthService: passwords, browser sessions, API tokens, CSRF and sign-in rate limits.
//
// Sessions, tokens and API-key secrets are 256-bit random values; only their
// SHA-256 is stored, and lookups compare hashes. A user's role and disabled
// flag are read on every authentication, and a credential issued before the
// user's credential generation changed (password reset, disabling) no longer
// works. Thread-safe.
#pragma once

#include <optional>
#include <semaphore>
#include <string>

#include "common/clock.h"
#include "model/user.h"
#include "services/actor.h"
#include "storage/store.h"

namespace puddle {

struct SessionGrant {
  User user;
  std::string session;  // cookie value; shown once
  std::string csrf_token;
};

struct TokenGrant {
  std::string token;
  TimePoint expires_at;
};

struct AuthOptions {
  std::string token_secret;
  bool api_keys_enabled = true;
  std::chrono::minutes session_idle_limit{8 * 60};
  std::chrono::hours session_lifetime{7 * 24};
  std::chrono::hours token_lifetime{12};
  // Failed password checks allowed per window, per (user, address) and per user.
  int failures_per_address = 10;
  int failures_per_user = 100;
  std::chrono::minutes failure_window{15};
  // Password checks (argon2id, ~0.2 s of a core each) run at most this many
  // at once; a check that cannot start within `password_check_wait` is
  // refused with rate_limited, so a flood of guesses under ever new user
  // names ties up neither every core nor every API handler thread.
  int concurrent_password_checks = 2;
  std::chrono::milliseconds password_check_wait{1000};
};

class AuthService {
 public:
  AuthService(Store& store, AuthOptions options);

  // Checks the password and opens a browser session.
  Result<SessionGrant> Login(const std::string& username, const std::string& password,
                             const std::string& client_address);
  // Issues an API token for a password or an API key.
  Result<TokenGrant> TokenForPassword(const std::string& username, const std::string& password,
                                      const std::string& client_address);
  Result<TokenGrant> TokenForApiKey(const std::string& key_id, const std::string& secret);

  // Resolves a session cookie or a token to the user it belongs to; kUnauthenticated otherwise.
  Result<Actor> AuthenticateSession(const std::string& session);
  Result<Actor> AuthenticateToken(const std::string& token);
  // AuthenticateSession for the SHA-256 of a session, as system cookies keep
  // it; refreshes that session's idle clock like a request with the cookie.
  Result<Actor> AuthenticateSessionHash(const std::string& session_hash);

  // The CSRF token of a session: an HMAC of the session hash under the token secret.
  std::string CsrfTokenFor(const std::string& session_hash) const;
  bool CheckCsrf(const std::string& session_hash, const std::string& presented) const;

  Status Logout(const std::string& session_hash);

  // Changes the actor's own password and ends their other sessions and tokens.
  Status ChangePassword(const Actor& actor, const std::string& current_password,
                        const std::string& new_password, const std::string& client_address);

  static Status ValidatePassword(const std::string& password, const std::string& field);

 private:
  // Verifies a password, counting failures; the user when it matches.
  Result<User> CheckPassword(const std::string& username, const std::string& password,
                             const std::string& client_address);
  Status CheckRateLimit(const std::string& username, const std::string& client_address);
  Result<std::string> IssueCredential(const User& user, CredentialKind kind, TimePoint expires_at);
  Result<Actor> Authenticate(const std::string& value, CredentialKind kind);
  Result<Actor> AuthenticateHash(const std::string& hash, CredentialKind kind);

  Store& store_;
  AuthOptions options_;
  std::counting_semaphore<> password_checks_;
};

}  // namespace puddle
