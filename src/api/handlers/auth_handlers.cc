// Routes under /api/v1/auth and /api/v1/api-keys.
#include "api/handler_support.h"
#include "api/handlers/routes.h"
#include "api/render.h"
#include "common/crypto.h"
#include "common/json.h"

namespace puddle::api {
namespace {

std::string SessionCookie(const std::string& value, int max_age_seconds) {
  return std::string(kSessionCookie) + "=" + value +
         "; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age_seconds);
}

}  // namespace

void AddAuthRoutes(Router& router, ApiDependencies& deps) {
  router.Add({"POST", "/api/v1/auth/login", Access::kPublic,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"username", "password"}));
                PUDDLE_ASSIGN_OR_RETURN(auto username, json::RequiredString(body, "username"));
                PUDDLE_ASSIGN_OR_RETURN(auto password, json::RequiredString(body, "password"));
                PUDDLE_ASSIGN_OR_RETURN(
                    auto grant, deps.auth.Login(username, password, context.request.peer_address));
                auto response = JsonReply(
                    200, boost::json::object{{"user", UserJson(grant.user)},
                                             {"csrfToken", grant.csrf_token}});
                response.headers.emplace_back("set-cookie",
                                              SessionCookie(grant.session, 7 * 24 * 3600));
                return response;
              },
              {"Sign in with a password; sets the session cookie", "auth", 200, "LoginRequest",
               "Me"}});

  router.Add({"POST", "/api/v1/auth/logout", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                // Ends the session, or the token the request was sent with.
                const Actor& actor = ActorOf(context);
                const std::string& credential =
                    actor.session_hash.empty() ? actor.token_hash : actor.session_hash;
                if (!credential.empty()) PUDDLE_RETURN_IF_ERROR(deps.auth.Logout(credential));
                auto response = NoContent();
                response.headers.emplace_back("set-cookie", SessionCookie("", 0));
                return response;
              },
              {"End the browser session, or revoke the token sent with the request", "auth",
               204}});

  router.Add({"GET", "/api/v1/auth/me", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                const Actor& actor = ActorOf(context);
                PUDDLE_ASSIGN_OR_RETURN(auto user, deps.store.ReadValue<std::optional<User>>(
                                                       [&](Tx& tx) { return tx.GetUser(actor.user_id); }));
                if (!user) return MakeError(ErrorCode::kUnauthenticated, "sign in first");
                boost::json::value csrf = nullptr;
                if (!actor.session_hash.empty()) {
                  csrf = boost::json::string(deps.auth.CsrfTokenFor(actor.session_hash));
                }
                return JsonReply(200, boost::json::object{{"user", UserJson(*user)},
                                                          {"csrfToken", std::move(csrf)}});
              },
              {"The signed-in user and the session's CSRF token", "auth", 200, "", "Me"}});

  router.Add({"POST", "/api/v1/auth/token", Access::kPublic,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(
                    body, {"username", "password", "apiKeyId", "apiSecretKey"}));
                TokenGrant grant;
                if (body.contains("apiKeyId") || body.contains("apiSecretKey")) {
                  PUDDLE_ASSIGN_OR_RETURN(auto key_id, json::RequiredString(body, "apiKeyId"));
                  PUDDLE_ASSIGN_OR_RETURN(auto secret, json::RequiredString(body, "apiSecretKey"));
                  PUDDLE_ASSIGN_OR_RETURN(grant, deps.auth.TokenForApiKey(key_id, secret));
                } else {
                  PUDDLE_ASSIGN_OR_RETURN(auto username, json::RequiredString(body, "username"));
                  PUDDLE_ASSIGN_OR_RETURN(auto password, json::RequiredString(body, "password"));
                  PUDDLE_ASSIGN_OR_RETURN(grant, deps.auth.TokenForPassword(
                                                     username, password, context.request.peer_address));
                }
                return JsonReply(200, boost::json::object{{"token", grant.token},
                                                          {"expiresAt", FormatTime(grant.expires_at)}});
              },
              {"Exchange a password or an API key for a 12-hour token", "auth", 200, "TokenRequest",
               "Token"}});

  router.Add({"POST", "/api/v1/auth/password", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(
                    json::RejectUnknownFields(body, {"currentPassword", "newPassword"}));
                PUDDLE_ASSIGN_OR_RETURN(auto current, json::RequiredString(body, "currentPassword"));
                PUDDLE_ASSIGN_OR_RETURN(auto next, json::RequiredString(body, "newPassword"));
                PUDDLE_RETURN_IF_ERROR(deps.auth.ChangePassword(ActorOf(context), current, next,
                                                                context.request.peer_address));
                return NoContent();
              },
              {"Change your own password; ends your other sessions and tokens", "auth", 204,
               "PasswordChange"}});

  router.Add({"POST", "/api/v1/api-keys", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"name"}));
                PUDDLE_ASSIGN_OR_RETURN(auto name, json::RequiredString(body, "name"));
                PUDDLE_ASSIGN_OR_RETURN(auto created, deps.users.CreateApiKey(ActorOf(context), name));
                auto object = ApiKeyJson(created.key);
                object["apiSecretKey"] = created.secret;
                return JsonReply(201, object);
              },
              {"Create an API key; the secret is shown only here", "api-keys", 201, "ApiKeyRequest",
               "NewApiKey"}});

  router.Add({"GET", "/api/v1/api-keys", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto page, ParsePage(context));
                PUDDLE_ASSIGN_OR_RETURN(auto keys, deps.users.ListApiKeys(ActorOf(context), page));
                boost::json::array items;
                for (const auto& key : keys.items) items.push_back(ApiKeyJson(key));
                return JsonReply(200, ListJson(std::move(items), keys.next_cursor));
              },
              {"List your API keys", "api-keys", 200, "", "ApiKeyList", {"limit", "cursor"}}});

  router.Add({"DELETE", "/api/v1/api-keys/{apiKeyId}", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                const Actor& actor = ActorOf(context);
                PUDDLE_RETURN_IF_ERROR(
                    deps.users.DeleteApiKey(actor, actor.user_id, context.params.at("apiKeyId")));
                return NoContent();
              },
              {"Delete one of your API keys", "api-keys", 204}});
}

}  // namespace puddle::api
