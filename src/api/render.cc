#include "api/render.h"

#include "common/json.h"

namespace puddle::api {
namespace {

boost::json::value OptionalInt(const std::optional<int64_t>& value) {
  if (!value) return nullptr;
  return *value;
}

boost::json::value OptionalMoney(const std::optional<double>& value) {
  if (!value) return nullptr;
  return json::RoundMoney(*value);
}

boost::json::value OptionalString(const std::optional<std::string>& value) {
  if (!value) return nullptr;
  return boost::json::string(*value);
}

// The admin view of provider state: only the documented, non-secret fields.
boost::json::object ProviderJson(const System& system) {
  boost::json::object state;
  boost::system::error_code error;
  auto parsed = boost::json::parse(system.provider_state, error);
  if (!error && parsed.is_object()) {
    for (const char* key : {"pid", "processStartTime", "port", "instanceId", "region"}) {
      if (const auto* value = parsed.as_object().if_contains(key)) state[key] = *value;
    }
  }
  return {{"kind", system.provider}, {"state", std::move(state)}};
}

boost::json::value OptionalTime(const std::optional<TimePoint>& time) {
  if (!time) return nullptr;
  return boost::json::string(FormatTime(*time));
}

boost::json::object ActivityJson(const SystemActivity& activity) {
  boost::json::array signals;
  for (const auto& signal : activity.signals) {
    signals.push_back({{"source", signal.source},
                       {"busy", signal.busy},
                       {"lastActiveAt", OptionalTime(signal.last_active_at)}});
  }
  return {{"state", ActivityStateName(activity.state)},
          {"since", OptionalTime(activity.since)},
          {"reason", activity.reason},
          {"idleStopAt", OptionalTime(activity.idle_stop_at)},
          {"signals", std::move(signals)}};
}

}  // namespace

boost::json::object UserJson(const User& user) {
  return {{"id", user.id},
          {"username", user.username},
          {"role", RoleName(user.role)},
          {"disabled", user.disabled},
          {"quota",
           {{"systems", OptionalInt(user.quota.systems)},
            {"runningSystems", OptionalInt(user.quota.running_systems)},
            {"monthlyBudget", OptionalMoney(user.quota.monthly_budget)}}},
          {"createdAt", FormatTime(user.created_at)}};
}

boost::json::object ApiKeyJson(const ApiKey& key) {
  return {{"apiKeyId", key.id}, {"name", key.name}, {"createdAt", FormatTime(key.created_at)}};
}

boost::json::object ImageJson(const Image& image) {
  return {{"id", image.id},
          {"product", image.product},
          {"version", image.version},
          {"provider", image.provider},
          {"status", image.status},
          {"providerImage", OptionalString(image.provider_image)},
          {"launch", LaunchSpecToJson(image.launch)},
          {"createdAt", FormatTime(image.created_at)}};
}

boost::json::object ProductJson(const ProductView& product) {
  boost::json::array versions;
  for (const auto& version : product.versions) {
    boost::json::array images;
    for (const auto& image : version.images) {
      images.push_back({{"id", image.id}, {"provider", image.provider}, {"status", image.status}});
    }
    versions.push_back({{"version", version.version.version},
                        {"enabled", version.version.enabled},
                        {"images", std::move(images)}});
  }
  return {{"id", product.product.id},
          {"label", product.product.label},
          {"versions", std::move(versions)}};
}

boost::json::object SystemTypeJson(const SystemType& type) {
  return {{"id", type.id},
          {"label", type.label},
          {"cpus", type.cpus},
          {"gpus", type.gpus},
          {"memoryMiB", type.memory_mib},
          {"diskGiB", type.disk_gib},
          {"pricePerHour", json::RoundMoney(type.price_per_hour)},
          {"enabled", type.enabled},
          {"maxUptimeMinutes", OptionalInt(type.max_uptime_minutes)}};
}

boost::json::object SystemJson(const SystemView& view, const Actor& actor) {
  const System& system = view.system;
  boost::json::object activity = {{"state", "unknown"},
                                  {"since", nullptr},
                                  {"reason", "activity is not measured yet"},
                                  {"idleStopAt", nullptr},
                                  {"signals", boost::json::array()}};
  if (view.activity) activity = ActivityJson(*view.activity);
  boost::json::object object = {
      {"id", system.id},
      {"name", system.name},
      {"owner", system.owner_username},
      {"ownerId", system.owner_id},
      {"product", system.product},
      {"version", system.version},
      {"systemType", system.system_type},
      {"status", SystemStatusName(system.status)},
      {"vmStatus", VmStatusName(system.vm_status)},
      {"productStatus", ProductStatusName(system.product_status)},
      {"url", OptionalString(view.url)},
      {"directUrl", OptionalString(view.direct_url)},
      {"pricePerHour", json::RoundMoney(system.price_per_hour)},
      {"cost", json::RoundMoney(view.cost)},
      {"idleTimeoutMinutes", system.idle_timeout_minutes},
      {"activity", std::move(activity)},
      {"createdAt", FormatTime(system.created_at)},
      {"updatedAt", FormatTime(system.updated_at)},
  };
  if (actor.IsAdmin()) object["provider"] = ProviderJson(system);
  return object;
}

boost::json::object OperationJson(const Operation& operation) {
  boost::json::value requested_by = nullptr;
  if (operation.requested_by) {
    requested_by = {{"id", *operation.requested_by},
                    {"username", operation.requested_by_username}};
  }
  boost::json::value error = nullptr;
  if (!operation.error.empty()) error = boost::json::string(operation.error);
  return {{"id", operation.id},
          {"action", OperationActionName(operation.action)},
          {"reason", OperationReasonName(operation.reason)},
          {"requestedBy", std::move(requested_by)},
          {"createdAt", FormatTime(operation.created_at)},
          {"state", OperationStateName(operation.state)},
          {"error", std::move(error)}};
}

boost::json::object EventJson(const Event& event) {
  return {{"id", event.id},
          {"time", FormatTime(event.time)},
          {"level", EventLevelName(event.level)},
          {"message", event.message},
          {"operationId", OptionalString(event.operation_id)}};
}

boost::json::object CostSessionJson(const CostSession& session, TimePoint now) {
  boost::json::value end = nullptr;
  if (session.end) end = boost::json::string(FormatTime(*session.end));
  return {{"start", FormatTime(session.start)},
          {"end", std::move(end)},
          {"pricePerHour", json::RoundMoney(session.price_per_hour)},
          {"cost", json::RoundMoney(SessionCost(session, now))}};
}

boost::json::object ListJson(boost::json::array items, const std::string& next_cursor) {
  boost::json::value cursor = nullptr;
  if (!next_cursor.empty()) cursor = boost::json::string(next_cursor);
  return {{"items", std::move(items)}, {"nextCursor", std::move(cursor)}};
}

}  // namespace puddle::api
