// SystemAccessService: one-time codes and system cookies, which let a
// signed-in browser into one system on that system's own origin.
//
// A code is issued on Puddle's origin to a browser session, for one system,
// and exchanged once, within its lifetime, on that system's origin for a
// system cookie. Both are 256-bit random values of which only the SHA-256 is
// stored. A system cookie lets its user into its one system for as long as the
// browser session it came from is valid: signing out, the session's expiry,
// a password change or reset and disabling the user all end it. Whether the
// user may still use the system (owner or admin) and whether the system still
// exists are checked by the caller on each request. Thread-safe.
//
// Limitations: codes and cookies of a deleted system stay in the store until
// they expire (they no longer work, because the system is gone). A browser
// can be handed a code for another user's system and so be signed into that
// user's system on its origin (login CSRF on a system origin); the pages it
// then sees are that other user's, which cannot reach this browser's Puddle
// session.
#pragma once

#include <chrono>
#include <string>

#include "auth/auth_service.h"
#include "common/result.h"
#include "services/actor.h"
#include "storage/store.h"

namespace puddle {

struct SystemAccessOptions {
  // How long a one-time code can be exchanged (default 60 s).
  std::chrono::seconds code_lifetime{60};
  // Upper bound of a system cookie's life; the session usually ends it first.
  std::chrono::hours cookie_lifetime{7 * 24};
};

class SystemAccessService {
 public:
  SystemAccessService(Store& store, AuthService& auth, SystemAccessOptions options = {});

  // Issues a one-time code for `system_id` to the browser session of `actor`.
  // REQUIRES: the caller checked that the actor may use the system.
  // Fails with forbidden when the actor did not sign in with a session cookie.
  Result<std::string> IssueCode(const Actor& actor, const std::string& system_id);

  // Exchanges a code for the value of a system cookie. The code is used up
  // even when the exchange fails. Fails with unauthenticated when the code is
  // unknown, used, expired, issued for another system, or its session ended.
  Result<std::string> ExchangeCode(const std::string& code, const std::string& system_id);

  // Resolves a system cookie of `system_id` to its user, read afresh (role
  // and disabled flag); unauthenticated when it is not valid for that system.
  Result<Actor> AuthenticateCookie(const std::string& cookie, const std::string& system_id);

 private:
  // The grant stored for `value`, when it is of `kind` for `system_id` and not expired.
  Result<SystemAccessGrant> FindGrant(Tx& tx, const std::string& value, SystemAccessKind kind,
                                      const std::string& system_id);

  Store& store_;
  AuthService& auth_;
  SystemAccessOptions options_;
};

}  // namespace puddle
