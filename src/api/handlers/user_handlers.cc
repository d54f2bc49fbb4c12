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

// A limit in `quota`: absent leaves it, null removes it, else a number of
// the expected kind. Errors name the dotted field ("quota.runningSystems").
template <typename T>
Result<std::optional<std::optional<T>>> ReadLimit(const boost::json::object& quota,
                                                  std::string_view key) {
  using Limit = std::optional<std::optional<T>>;
  std::string field = "quota." + std::string(key);
  auto found = quota.find(key);
  if (found == quota.end()) return Limit();
  const boost::json::value& value = found->value();
  if (value.is_null()) return Limit(std::optional<T>());
  if constexpr (std::is_same_v<T, double>) {
    if (value.is_number()) return Limit(std::optional<T>(value.to_number<double>()));
    return MakeError(ErrorCode::kValidationFailed,
                     field + " must be a non-negative number or null (no limit)", field);
  } else {
    if (value.is_int64()) return Limit(std::optional<T>(value.as_int64()));
    if (value.is_uint64() && value.as_uint64() <= INT64_MAX) {
      return Limit(std::optional<T>(static_cast<int64_t>(value.as_uint64())));
    }
    return MakeError(ErrorCode::kValidationFailed,
                     field + " must be a non-negative integer or null (no limit)", field);
  }
}

Result<QuotaPatch> ReadQuotaPatch(const boost::json::object& body) {
  QuotaPatch patch;
  auto found = body.find("quota");
  if (found == body.end()) return patch;
  if (!found->value().is_object()) {
    return MakeError(ErrorCode::kValidationFailed,
                     "quota must be an object with systems, runningSystems and monthlyBudget",
                     "quota");
  }
  const auto& quota = found->value().as_object();
  PUDDLE_RETURN_IF_ERROR(
      json::RejectUnknownFields(quota, {"systems", "runningSystems", "monthlyBudget"}, "quota."));
  PUDDLE_ASSIGN_OR_RETURN(patch.systems, ReadLimit<int64_t>(quota, "systems"));
  PUDDLE_ASSIGN_OR_RETURN(patch.running_systems, ReadLimit<int64_t>(quota, "runningSystems"));
  PUDDLE_ASSIGN_OR_RETURN(patch.monthly_budget, ReadLimit<double>(quota, "monthlyBudget"));
  return patch;
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
                UserPatch patch;
                PUDDLE_ASSIGN_OR_RETURN(patch.quota, ReadQuotaPatch(body));
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
              {"Change a user's role, disabled flag or quota", "users", 200, "UserPatch", "User"}});

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
