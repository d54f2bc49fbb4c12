// Routes under /api/v1/users (admins).
#include "api/handler_support.h"
#include "api/handlers/routes.h"
#include "api/render.h"
#include "common/json.h"

namespace puddle::api {
namespace {

Result<Role> ParseRole(const std::string& role) {
  if (role == "admin") return Role::kAdmin;
  if (role == "user") return Role::kUser;
  return MakeError(ErrorCode::kValidationFailed, "role must be \"admin\" or \"user\"", "role");
}

}  // namespace

void AddUserRoutes(Router& router, ApiDependencies& deps) {
  router.Add({"POST", "/api/v1/users", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(
                    json::RejectUnknownFields(body, {"username", "password", "role"}));
                PUDDLE_ASSIGN_OR_RETURN(auto username, json::RequiredString(body, "username"));
                PUDDLE_ASSIGN_OR_RETURN(auto password, json::RequiredString(body, "password"));
                PUDDLE_ASSIGN_OR_RETURN(auto role_name, json::OptionalString(body, "role"));
                PUDDLE_ASSIGN_OR_RETURN(auto role, ParseRole(role_name.value_or("user")));
                PUDDLE_ASSIGN_OR_RETURN(auto user,
                                        deps.users.Create(ActorOf(context), username, password, role));
                auto response = JsonReply(201, UserJson(user));
                response.SetHeader("location", "/api/v1/users/" + user.id);
                return response;
              },
              {"Create a user", "users", 201, "UserCreate", "User"}});

  router.Add({"GET", "/api/v1/users", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto page, ParsePage(context));
                PUDDLE_ASSIGN_OR_RETURN(auto users, deps.users.List(ActorOf(context), page));
                boost::json::array items;
                for (const auto& user : users.items) items.push_back(UserJson(user));
                return JsonReply(200, ListJson(std::move(items), users.next_cursor));
              },
              {"List users", "users", 200, "", "UserList", {"limit", "cursor"}}});

  router.Add({"GET", "/api/v1/users/{id}", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto user,
                                        deps.users.Get(ActorOf(context), context.params.at("id")));
                return JsonReply(200, UserJson(user));
              },
              {"Get a user", "users", 200, "", "User"}});

  router.Add({"PATCH", "/api/v1/users/{id}", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"role", "disabled", "quota"}));
                if (body.contains("quota")) {
                  return MakeError(ErrorCode::kValidationFailed,
                                   "quotas are not supported yet; remove quota", "quota");
                }
                UserPatch patch;
                PUDDLE_ASSIGN_OR_RETURN(auto role_name, json::OptionalString(body, "role"));
                if (role_name) {
                  PUDDLE_ASSIGN_OR_RETURN(auto role, ParseRole(*role_name));
                  patch.role = role;
                }
                PUDDLE_ASSIGN_OR_RETURN(patch.disabled, json::OptionalBool(body, "disabled"));
                PUDDLE_ASSIGN_OR_RETURN(
                    auto user, deps.users.Update(ActorOf(context), context.params.at("id"), patch));
                return JsonReply(200, UserJson(user));
              },
              {"Change a user's role or disable them", "users", 200, "UserPatch", "User"}});

  router.Add({"POST", "/api/v1/users/{id}/password", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"password"}));
                PUDDLE_ASSIGN_OR_RETURN(auto password, json::RequiredString(body, "password"));
                PUDDLE_RETURN_IF_ERROR(
                    deps.users.SetPassword(ActorOf(context), context.params.at("id"), password));
                return NoContent();
              },
              {"Set a user's password; ends their sessions, tokens and keys", "users", 204,
               "PasswordSet"}});

  router.Add({"DELETE", "/api/v1/users/{id}/api-keys/{apiKeyId}", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(deps.users.DeleteApiKey(
                    ActorOf(context), context.params.at("id"), context.params.at("apiKeyId")));
                return NoContent();
              },
              {"Delete another user's API key", "users", 204}});
}

}  // namespace puddle::api
