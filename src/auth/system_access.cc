#include "auth/system_access.h"

#include "common/crypto.h"
#include "common/log.h"

namespace puddle {
namespace {

tl::unexpected<Error> NotValid(SystemAccessKind kind) {
  if (kind == SystemAccessKind::kCode) {
    return MakeError(ErrorCode::kUnauthenticated,
                     "this link to the system was used already, expired or is for another "
                     "system; open the system again from Puddle");
  }
  return MakeError(ErrorCode::kUnauthenticated,
                   "no valid access to this system; open it from Puddle");
}

}  // namespace

SystemAccessService::SystemAccessService(Store& store, AuthService& auth,
                                         SystemAccessOptions options)
    : store_(store), auth_(auth), options_(options) {}

Result<std::string> SystemAccessService::IssueCode(const Actor& actor,
                                                   const std::string& system_id) {
  if (actor.session_hash.empty()) {
    return MakeError(ErrorCode::kForbidden,
                     "opening a system needs a browser session; programs send their token to "
                     "/systems/" +
                         system_id + "/ on Puddle's address instead");
  }
  std::string code = RandomToken(32);
  SystemAccessGrant grant;
  grant.hash = Sha256Hex(code);
  grant.kind = SystemAccessKind::kCode;
  grant.system_id = system_id;
  grant.user_id = actor.user_id;
  grant.session_hash = actor.session_hash;
  grant.created_at = store_.clock().Now();
  grant.expires_at = grant.created_at + options_.code_lifetime;
  PUDDLE_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
    // Expired grants go here, so the table stays as small as what is in use.
    PUDDLE_RETURN_IF_ERROR(tx.DeleteExpiredSystemAccess(grant.created_at).map([](int64_t) {}));
    return tx.InsertSystemAccess(grant);
  }));
  return code;
}

Result<SystemAccessGrant> SystemAccessService::FindGrant(Tx& tx, const std::string& value,
                                                         SystemAccessKind kind,
                                                         const std::string& system_id) {
  if (value.empty() || value.size() > 256) return NotValid(kind);
  std::string hash = Sha256Hex(value);
  PUDDLE_ASSIGN_OR_RETURN(auto grant, tx.GetSystemAccess(hash));
  if (!grant || !ConstantTimeEquals(grant->hash, hash) || grant->kind != kind ||
      grant->system_id != system_id || grant->expires_at <= tx.Now()) {
    return NotValid(kind);
  }
  return std::move(*grant);
}

Result<std::string> SystemAccessService::ExchangeCode(const std::string& code,
                                                      const std::string& system_id) {
  // Use the code up first, in its own transaction: a failed exchange must
  // not leave it usable, and of two concurrent exchanges only one deletes it.
  // A code tried on another system's origin is used up too, so it cannot be
  // probed there first; the checks therefore come after the commit.
  auto taken = store_.WriteValue<std::optional<SystemAccessGrant>>(
      [&](Tx& tx) -> Result<std::optional<SystemAccessGrant>> {
        if (code.empty() || code.size() > 256) return std::nullopt;
        std::string hash = Sha256Hex(code);
        PUDDLE_ASSIGN_OR_RETURN(auto grant, tx.GetSystemAccess(hash));
        if (!grant || grant->kind != SystemAccessKind::kCode) return std::nullopt;
        PUDDLE_ASSIGN_OR_RETURN(bool deleted, tx.DeleteSystemAccess(grant->hash));
        if (!deleted) return std::nullopt;
        return grant;
      });
  if (!taken) return tl::unexpected(taken.error());
  const std::optional<SystemAccessGrant>& used = *taken;
  if (!used || used->system_id != system_id || used->expires_at <= store_.clock().Now()) {
    return NotValid(SystemAccessKind::kCode);
  }

  // The session that asked must still be valid, and its user the same.
  auto actor = auth_.AuthenticateSessionHash(used->session_hash);
  if (!actor || actor->user_id != used->user_id) return NotValid(SystemAccessKind::kCode);

  std::string cookie = RandomToken(32);
  SystemAccessGrant grant = *used;
  grant.hash = Sha256Hex(cookie);
  grant.kind = SystemAccessKind::kCookie;
  grant.created_at = store_.clock().Now();
  grant.expires_at = grant.created_at + options_.cookie_lifetime;
  PUDDLE_RETURN_IF_ERROR(store_.Write([&](Tx& tx) { return tx.InsertSystemAccess(grant); }));
  log::Info("system opened", {{"system_id", system_id}, {"user", actor->username}});
  return cookie;
}

Result<Actor> SystemAccessService::AuthenticateCookie(const std::string& cookie,
                                                      const std::string& system_id) {
  PUDDLE_ASSIGN_OR_RETURN(auto grant, store_.ReadValue<SystemAccessGrant>([&](Tx& tx) {
    return FindGrant(tx, cookie, SystemAccessKind::kCookie, system_id);
  }));
  auto actor = auth_.AuthenticateSessionHash(grant.session_hash);
  if (!actor || actor->user_id != grant.user_id) return NotValid(SystemAccessKind::kCookie);
  // The request came with the system cookie, not the Puddle session itself.
  actor->session_hash.clear();
  return actor;
}

}  // namespace puddle
