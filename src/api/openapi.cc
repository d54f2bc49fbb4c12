#include "api/openapi.h"

#include <string>

namespace puddle::api {
namespace {

boost::json::value Ref(const std::string& name) {
  return {{"$ref", "#/components/schemas/" + name}};
}

boost::json::object Object(std::initializer_list<std::pair<const char*, boost::json::value>> props,
                           std::initializer_list<const char*> required = {}) {
  boost::json::object properties;
  for (const auto& [name, schema] : props) properties[name] = schema;
  boost::json::array required_names;
  for (const char* name : required) required_names.emplace_back(name);
  boost::json::object schema = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required_names.empty()) schema["required"] = std::move(required_names);
  return schema;
}

boost::json::value Type(const char* type) { return {{"type", type}}; }
boost::json::value Nullable(const char* type) {
  return {{"type", boost::json::array{type, "null"}}};
}
boost::json::value ListOf(const std::string& name) {
  return Object({{"items", {{"type", "array"}, {"items", Ref(name)}}},
                 {"nextCursor", Nullable("string")}},
                {"items", "nextCursor"});
}

boost::json::object MakeSchemas() {
  boost::json::object schemas;
  schemas["Error"] = Object(
      {{"error", Object({{"code", Type("string")},
                         {"message", Type("string")},
                         {"field", Type("string")},
                         {"status", Type("string")},
                         {"requestId", Type("string")}},
                        {"code", "message", "requestId"})}},
      {"error"});
  schemas["Quota"] = Object({{"systems", Nullable("integer")},
                             {"runningSystems", Nullable("integer")},
                             {"monthlyBudget", Nullable("number")}});
  schemas["User"] = Object({{"id", Type("string")},
                            {"username", Type("string")},
                            {"role", {{"enum", {"admin", "user"}}}},
                            {"disabled", Type("boolean")},
                            {"quota", Ref("Quota")},
                            {"createdAt", {{"type", "string"}, {"format", "date-time"}}}},
                           {"id", "username", "role", "disabled", "quota", "createdAt"});
  schemas["UserList"] = ListOf("User");
  schemas["UserCreate"] = Object({{"username", Type("string")},
                                  {"password", {{"type", "string"}, {"minLength", 8}}},
                                  {"role", {{"enum", {"admin", "user"}}}}},
                                 {"username", "password"});
  schemas["QuotaPatch"] = Object(
      {{"systems", {{"type", boost::json::array{"integer", "null"}}, {"minimum", 0}}},
       {"runningSystems", {{"type", boost::json::array{"integer", "null"}}, {"minimum", 0}}},
       {"monthlyBudget", {{"type", boost::json::array{"number", "null"}}, {"minimum", 0}}}});
  schemas["QuotaPatch"].as_object()["description"] =
      "Limits to change; a limit left out stays as it is, null removes it. systems counts the "
      "user's systems that are not deleted; runningSystems those whose create or start was "
      "accepted and that are not yet stopped, failed, deleting or deleted; monthlyBudget is "
      "money per UTC calendar month. Creating or starting past a limit is 409 quota_exceeded "
      "or budget_exceeded.";
  schemas["UserPatch"] = Object({{"role", {{"enum", {"admin", "user"}}}},
                                 {"disabled", Type("boolean")},
                                 {"quota", Ref("QuotaPatch")}});
  schemas["PasswordSet"] = Object({{"password", Type("string")}}, {"password"});
  schemas["PasswordChange"] =
      Object({{"currentPassword", Type("string")}, {"newPassword", Type("string")}},
             {"currentPassword", "newPassword"});
  schemas["LoginRequest"] =
      Object({{"username", Type("string")}, {"password", Type("string")}}, {"username", "password"});
  schemas["Me"] = Object({{"user", Ref("User")}, {"csrfToken", Nullable("string")}}, {"user"});
  schemas["TokenRequest"] = Object({{"username", Type("string")},
                                    {"password", Type("string")},
                                    {"apiKeyId", Type("string")},
                                    {"apiSecretKey", Type("string")}});
  schemas["Token"] = Object({{"token", Type("string")}, {"expiresAt", Type("string")}},
                            {"token", "expiresAt"});
  schemas["ApiKeyRequest"] = Object({{"name", Type("string")}}, {"name"});
  schemas["ApiKey"] = Object(
      {{"apiKeyId", Type("string")}, {"name", Type("string")}, {"createdAt", Type("string")}});
  schemas["NewApiKey"] = Object({{"apiKeyId", Type("string")},
                                 {"apiSecretKey", Type("string")},
                                 {"name", Type("string")},
                                 {"createdAt", Type("string")}});
  schemas["ApiKeyList"] = ListOf("ApiKey");
  schemas["LaunchSpec"] = Object({{"command", {{"type", "array"}, {"items", Type("string")}}},
                                  {"env", {{"type", "object"}, {"additionalProperties", Type("string")}}},
                                  {"healthPath", Type("string")},
                                  {"basePathMode", {{"enum", {"prefix", "strip"}}}},
                                  {"startTimeoutSeconds", Type("integer")}},
                                 {"command"});
  schemas["Image"] = Object({{"id", Type("string")},
                             {"product", Type("string")},
                             {"version", Type("string")},
                             {"provider", Type("string")},
                             {"status", {{"enum", {"ready", "building", "failed", "disabled"}}}},
                             {"providerImage", Nullable("string")},
                             {"launch", Ref("LaunchSpec")}});
  schemas["ImageList"] = ListOf("Image");
  schemas["ImageCreate"] = Object({{"product", Type("string")},
                                   {"version", Type("string")},
                                   {"provider", Type("string")},
                                   {"providerImage", Type("string")},
                                   {"launch", Ref("LaunchSpec")}},
                                  {"product", "version", "launch"});
  schemas["ImagePatch"] = Object({{"status", {{"enum", {"ready", "disabled"}}}}}, {"status"});
  schemas["Product"] = Object({{"id", Type("string")},
                               {"label", Type("string")},
                               {"versions", {{"type", "array"}, {"items", Type("object")}}}});
  schemas["ProductList"] = ListOf("Product");
  schemas["ProductCreate"] = Object({{"id", Type("string")}, {"label", Type("string")}}, {"id", "label"});
  schemas["ProductPatch"] = Object({{"label", Type("string")}}, {"label"});
  schemas["VersionCreate"] =
      Object({{"version", Type("string")}, {"enabled", Type("boolean")}}, {"version"});
  schemas["VersionPatch"] = Object({{"enabled", Type("boolean")}}, {"enabled"});
  schemas["SystemType"] = Object({{"id", Type("string")},
                                  {"label", Type("string")},
                                  {"cpus", Type("integer")},
                                  {"gpus", Type("integer")},
                                  {"memoryMiB", Type("integer")},
                                  {"diskGiB", Type("integer")},
                                  {"pricePerHour", Type("number")},
                                  {"enabled", Type("boolean")},
                                  {"maxUptimeMinutes", Nullable("integer")}});
  schemas["SystemTypeList"] = ListOf("SystemType");
  schemas["SystemTypeCreate"] = schemas["SystemType"];
  schemas["SystemTypePatch"] = schemas["SystemType"];
  schemas["Settings"] = Object({{"idleTimeoutOptions", {{"type", "array"}, {"items", Type("object")}}},
                                {"currency", Type("string")},
                                {"maxKeepAliveMinutes", Type("integer")}});
  schemas["SystemCreate"] = Object({{"name", Type("string")},
                                    {"product", Type("string")},
                                    {"version", Type("string")},
                                    {"systemType", Type("string")},
                                    {"idleTimeoutMinutes", Type("integer")}},
                                   {"name", "product", "version", "systemType"});
  schemas["KeepAlive"] = Object({{"minutes", Type("integer")}});
  schemas["System"] = Object(
      {{"id", Type("string")},
       {"name", Type("string")},
       {"owner", Type("string")},
       {"ownerId", Type("string")},
       {"product", Type("string")},
       {"version", Type("string")},
       {"systemType", Type("string")},
       {"status", {{"enum", {"queued", "provisioning", "starting", "running", "stopping", "stopped",
                             "rebooting", "deleting", "deleted", "failed"}}}},
       {"vmStatus", {{"enum", {"none", "pending", "running", "stopping", "stopped", "terminated",
                               "unknown"}}}},
       {"productStatus", {{"enum", {"none", "starting", "ready", "unhealthy", "stopped"}}}},
       {"url", Nullable("string")},
       {"directUrl", Nullable("string")},
       {"pricePerHour", Type("number")},
       {"cost", Type("number")},
       {"idleTimeoutMinutes", Type("integer")},
       {"activity", Ref("Activity")},
       {"provider", Type("object")},
       {"createdAt", Type("string")},
       {"updatedAt", Type("string")}});
  schemas["SystemList"] = ListOf("System");
  schemas["ActivitySignal"] = Object({{"source", {{"enum", {"proxy", "product", "cpu"}}}},
                                      {"busy", Type("boolean")},
                                      {"lastActiveAt", Nullable("string")}});
  schemas["Activity"] = Object(
      {{"state", {{"enum", {"busy", "idle", "unknown"}}}},
       {"since", Nullable("string")},
       {"reason", Type("string")},
       {"idleStopAt", Nullable("string")},
       {"signals", {{"type", "array"}, {"items", Ref("ActivitySignal")}}}});
  schemas["Event"] = Object({{"id", Type("string")},
                             {"time", Type("string")},
                             {"level", {{"enum", {"info", "warning", "error"}}}},
                             {"message", Type("string")},
                             {"operationId", Nullable("string")}});
  schemas["EventList"] = ListOf("Event");
  schemas["Operation"] = Object({{"id", Type("string")},
                                 {"action", Type("string")},
                                 {"reason", Type("string")},
                                 {"requestedBy", {{"type", boost::json::array{"object", "null"}}}},
                                 {"createdAt", Type("string")},
                                 {"state", {{"enum", {"queued", "running", "succeeded", "failed"}}}},
                                 {"error", Nullable("string")}});
  schemas["OperationList"] = ListOf("Operation");
  schemas["Session"] = Object({{"start", Type("string")},
                               {"end", Nullable("string")},
                               {"pricePerHour", Type("number")},
                               {"cost", Type("number")}});
  schemas["SessionList"] = ListOf("Session");
  schemas["CostReportItem"] = Object(
      {{"key",
        {{"type", "string"},
         {"description", "The username for groupBy=user, else the product or system type id"}}},
       {"hours", Type("number")},
       {"cost", Type("number")}},
      {"key", "hours", "cost"});
  schemas["CostReport"] = Object({{"from", {{"type", "string"}, {"format", "date-time"}}},
                                  {"to", {{"type", "string"}, {"format", "date-time"}}},
                                  {"groupBy", {{"enum", {"user", "product", "systemType"}}}},
                                  {"currency", Type("string")},
                                  {"items", {{"type", "array"}, {"items", Ref("CostReportItem")}}},
                                  {"total", Type("number")}},
                                 {"from", "to", "groupBy", "currency", "items", "total"});
  schemas["CostReport"].as_object()["description"] =
      "Cost sessions clipped to [from, to), whole seconds at each session's price. from and to "
      "take RFC 3339 or YYYY-MM-DD (UTC) and default to the start of this UTC month and now; "
      "groupBy defaults to user. Items are ordered by key; hours and money are rounded to 4 "
      "decimals. With Accept: text/csv the body is CSV with the header row key,hours,cost.";
  schemas["Health"] = Object({{"status", Type("string")}}, {"status"});
  return schemas;
}

std::string Lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

boost::json::object Operation(const Route& route) {
  boost::json::object operation;
  operation["summary"] = route.doc.summary;
  if (!route.doc.tag.empty()) operation["tags"] = boost::json::array{boost::json::string(route.doc.tag)};

  boost::json::array parameters;
  size_t at = 0;
  while ((at = route.pattern.find('{', at)) != std::string::npos) {
    size_t end = route.pattern.find('}', at);
    parameters.push_back({{"name", route.pattern.substr(at + 1, end - at - 1)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", Type("string")}});
    at = end;
  }
  for (const auto& name : route.doc.query) {
    parameters.push_back({{"name", name}, {"in", "query"}, {"required", false},
                          {"schema", Type("string")}});
  }
  if (!parameters.empty()) operation["parameters"] = std::move(parameters);

  if (!route.doc.request_schema.empty()) {
    operation["requestBody"] = {
        {"required", route.method != "POST" || route.doc.request_schema != "KeepAlive"},
        {"content", {{"application/json", {{"schema", Ref(route.doc.request_schema)}}}}}};
  }

  boost::json::object responses;
  boost::json::object success = {{"description", route.doc.summary}};
  if (!route.doc.response_schema.empty()) {
    success["content"] = {{"application/json", {{"schema", Ref(route.doc.response_schema)}}}};
  }
  // The cost report also comes as CSV (key,hours,cost) for Accept: text/csv.
  if (route.doc.response_schema == "CostReport") {
    success["content"].as_object()["text/csv"] = {{"schema", Type("string")}};
  }
  responses[std::to_string(route.doc.success_status)] = std::move(success);
  responses["default"] = {
      {"description", "An error"},
      {"content", {{"application/json", {{"schema", Ref("Error")}}}}}};
  operation["responses"] = std::move(responses);

  if (route.access == Access::kPublic) operation["security"] = boost::json::array();
  return operation;
}

}  // namespace

const boost::json::object& OpenApiSchemas() {
  static const boost::json::object schemas = MakeSchemas();
  return schemas;
}

boost::json::object BuildOpenApi(const Router& router) {
  boost::json::object paths;
  for (const auto& route : router.routes()) {
    const std::string& path = route.pattern;
    auto& item = paths[path];
    if (!item.is_object()) item = boost::json::object();
    item.as_object()[Lower(route.method)] = Operation(route);
  }
  return {
      {"openapi", "3.1.0"},
      {"info", {{"title", "Puddle API"}, {"version", "1"}}},
      {"servers", boost::json::array{{{"url", "/"}}}},
      {"paths", std::move(paths)},
      {"components",
       {{"schemas", OpenApiSchemas()},
        {"securitySchemes",
         {{"token", {{"type", "apiKey"}, {"in", "header"}, {"name", "X-Puddle-Token"}}},
          {"bearer", {{"type", "http"}, {"scheme", "bearer"}}},
          {"session", {{"type", "apiKey"}, {"in", "cookie"}, {"name", "__Host-puddle_session"}}}}}}},
      {"security", boost::json::array{{{"token", boost::json::array()}},
                                      {{"bearer", boost::json::array()}},
                                      {{"session", boost::json::array()}}}},
  };
}

}  // namespace puddle::api
