// Routes for the catalog: products, versions, images, system types, settings.
#include "api/handler_support.h"
#include "api/handlers/routes.h"
#include "api/render.h"
#include "common/json.h"

namespace puddle::api {
namespace {

Result<SystemType> ReadSystemType(const boost::json::object& body) {
  PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(
      body, {"id", "label", "cpus", "gpus", "memoryMiB", "diskGiB", "pricePerHour", "enabled",
             "maxUptimeMinutes"}));
  SystemType type;
  PUDDLE_ASSIGN_OR_RETURN(type.id, json::RequiredString(body, "id"));
  PUDDLE_ASSIGN_OR_RETURN(type.label, json::RequiredString(body, "label"));
  PUDDLE_ASSIGN_OR_RETURN(auto cpus, json::OptionalInt(body, "cpus"));
  PUDDLE_ASSIGN_OR_RETURN(auto gpus, json::OptionalInt(body, "gpus"));
  PUDDLE_ASSIGN_OR_RETURN(auto memory, json::OptionalInt(body, "memoryMiB"));
  PUDDLE_ASSIGN_OR_RETURN(auto disk, json::OptionalInt(body, "diskGiB"));
  PUDDLE_ASSIGN_OR_RETURN(auto price, json::OptionalNumber(body, "pricePerHour"));
  PUDDLE_ASSIGN_OR_RETURN(auto enabled, json::OptionalBool(body, "enabled"));
  PUDDLE_ASSIGN_OR_RETURN(type.max_uptime_minutes, json::OptionalInt(body, "maxUptimeMinutes"));
  if (!cpus || !memory || !price) {
    std::string field = !cpus ? "cpus" : !memory ? "memoryMiB" : "pricePerHour";
    return MakeError(ErrorCode::kValidationFailed, field + " is required", field);
  }
  type.cpus = *cpus;
  type.gpus = gpus.value_or(0);
  type.memory_mib = *memory;
  type.disk_gib = disk.value_or(10);
  type.price_per_hour = *price;
  type.enabled = enabled.value_or(true);
  return type;
}

Result<SystemTypePatch> ReadSystemTypePatch(const boost::json::object& body) {
  PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(
      body, {"label", "cpus", "gpus", "memoryMiB", "diskGiB", "pricePerHour", "enabled",
             "maxUptimeMinutes"}));
  SystemTypePatch patch;
  PUDDLE_ASSIGN_OR_RETURN(patch.label, json::OptionalString(body, "label"));
  PUDDLE_ASSIGN_OR_RETURN(patch.cpus, json::OptionalInt(body, "cpus"));
  PUDDLE_ASSIGN_OR_RETURN(patch.gpus, json::OptionalInt(body, "gpus"));
  PUDDLE_ASSIGN_OR_RETURN(patch.memory_mib, json::OptionalInt(body, "memoryMiB"));
  PUDDLE_ASSIGN_OR_RETURN(patch.disk_gib, json::OptionalInt(body, "diskGiB"));
  PUDDLE_ASSIGN_OR_RETURN(patch.price_per_hour, json::OptionalNumber(body, "pricePerHour"));
  PUDDLE_ASSIGN_OR_RETURN(patch.enabled, json::OptionalBool(body, "enabled"));
  if (body.contains("maxUptimeMinutes")) {
    PUDDLE_ASSIGN_OR_RETURN(auto uptime, json::OptionalInt(body, "maxUptimeMinutes"));
    patch.max_uptime_minutes = uptime;
  }
  return patch;
}

}  // namespace

void AddCatalogRoutes(Router& router, ApiDependencies& deps) {
  router.Add({"GET", "/api/v1/products", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto products, deps.catalog.ListProducts(ActorOf(context)));
                boost::json::array items;
                for (const auto& product : products) items.push_back(ProductJson(product));
                return JsonReply(200, ListJson(std::move(items), ""));
              },
              {"List products with their versions", "catalog", 200, "", "ProductList"}});

  router.Add({"GET", "/api/v1/products/{id}", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto product,
                                        deps.catalog.GetProduct(ActorOf(context), context.params.at("id")));
                return JsonReply(200, ProductJson(product));
              },
              {"Get a product", "catalog", 200, "", "Product"}});

  router.Add({"POST", "/api/v1/products", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"id", "label"}));
                PUDDLE_ASSIGN_OR_RETURN(auto id, json::RequiredString(body, "id"));
                PUDDLE_ASSIGN_OR_RETURN(auto label, json::RequiredString(body, "label"));
                PUDDLE_ASSIGN_OR_RETURN(auto product,
                                        deps.catalog.CreateProduct(ActorOf(context), id, label));
                return JsonReply(201, ProductJson(product));
              },
              {"Create a product", "catalog", 201, "ProductCreate", "Product"}});

  router.Add({"PATCH", "/api/v1/products/{id}", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"label"}));
                PUDDLE_ASSIGN_OR_RETURN(auto label, json::RequiredString(body, "label"));
                PUDDLE_ASSIGN_OR_RETURN(auto product, deps.catalog.UpdateProduct(
                                                          ActorOf(context), context.params.at("id"), label));
                return JsonReply(200, ProductJson(product));
              },
              {"Rename a product", "catalog", 200, "ProductPatch", "Product"}});

  router.Add({"POST", "/api/v1/products/{id}/versions", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"version", "enabled"}));
                PUDDLE_ASSIGN_OR_RETURN(auto version, json::RequiredString(body, "version"));
                PUDDLE_ASSIGN_OR_RETURN(auto enabled, json::OptionalBool(body, "enabled"));
                PUDDLE_ASSIGN_OR_RETURN(auto product,
                                        deps.catalog.AddVersion(ActorOf(context), context.params.at("id"),
                                                                version, enabled.value_or(true)));
                return JsonReply(201, ProductJson(product));
              },
              {"Add a version to a product", "catalog", 201, "VersionCreate", "Product"}});

  router.Add({"PATCH", "/api/v1/products/{id}/versions/{version}", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"enabled"}));
                PUDDLE_ASSIGN_OR_RETURN(auto enabled, json::OptionalBool(body, "enabled"));
                if (!enabled) {
                  return MakeError(ErrorCode::kValidationFailed, "enabled is required", "enabled");
                }
                PUDDLE_ASSIGN_OR_RETURN(
                    auto product,
                    deps.catalog.SetVersionEnabled(ActorOf(context), context.params.at("id"),
                                                   context.params.at("version"), *enabled));
                return JsonReply(200, ProductJson(product));
              },
              {"Enable or disable a product version", "catalog", 200, "VersionPatch", "Product"}});

  router.Add({"GET", "/api/v1/images", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto images, deps.catalog.ListImages(ActorOf(context)));
                boost::json::array items;
                for (const auto& image : images) items.push_back(ImageJson(image));
                return JsonReply(200, ListJson(std::move(items), ""));
              },
              {"List images", "catalog", 200, "", "ImageList"}});

  router.Add({"POST", "/api/v1/images", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(
                    body, {"product", "version", "provider", "providerImage", "launch"}));
                Image image;
                PUDDLE_ASSIGN_OR_RETURN(image.product, json::RequiredString(body, "product"));
                PUDDLE_ASSIGN_OR_RETURN(image.version, json::RequiredString(body, "version"));
                PUDDLE_ASSIGN_OR_RETURN(auto provider, json::OptionalString(body, "provider"));
                image.provider = provider.value_or("local");
                PUDDLE_ASSIGN_OR_RETURN(image.provider_image,
                                        json::OptionalString(body, "providerImage"));
                const auto* launch = body.if_contains("launch");
                if (launch == nullptr) {
                  return MakeError(ErrorCode::kValidationFailed, "launch is required", "launch");
                }
                PUDDLE_ASSIGN_OR_RETURN(image.launch, LaunchSpecFromJson(*launch));
                PUDDLE_ASSIGN_OR_RETURN(auto created,
                                        deps.catalog.CreateImage(ActorOf(context), std::move(image)));
                return JsonReply(201, ImageJson(created));
              },
              {"Add an image for a product version; its launch command runs on the host", "catalog",
               201, "ImageCreate", "Image"}});

  router.Add({"PATCH", "/api/v1/images/{id}", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"status"}));
                PUDDLE_ASSIGN_OR_RETURN(auto status, json::RequiredString(body, "status"));
                PUDDLE_ASSIGN_OR_RETURN(
                    auto image,
                    deps.catalog.SetImageStatus(ActorOf(context), context.params.at("id"), status));
                return JsonReply(200, ImageJson(image));
              },
              {"Enable or disable an image", "catalog", 200, "ImagePatch", "Image"}});

  router.Add({"GET", "/api/v1/system-types", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto types, deps.catalog.ListSystemTypes(ActorOf(context)));
                boost::json::array items;
                for (const auto& type : types) items.push_back(SystemTypeJson(type));
                return JsonReply(200, ListJson(std::move(items), ""));
              },
              {"List system types", "catalog", 200, "", "SystemTypeList"}});

  router.Add({"GET", "/api/v1/system-types/{id}", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(
                    auto type, deps.catalog.GetSystemType(ActorOf(context), context.params.at("id")));
                return JsonReply(200, SystemTypeJson(type));
              },
              {"Get a system type", "catalog", 200, "", "SystemType"}});

  router.Add({"POST", "/api/v1/system-types", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_ASSIGN_OR_RETURN(auto type, ReadSystemType(body));
                PUDDLE_ASSIGN_OR_RETURN(auto created,
                                        deps.catalog.CreateSystemType(ActorOf(context), std::move(type)));
                return JsonReply(201, SystemTypeJson(created));
              },
              {"Create a system type", "catalog", 201, "SystemTypeCreate", "SystemType"}});

  router.Add({"PATCH", "/api/v1/system-types/{id}", Access::kAdmin,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_ASSIGN_OR_RETURN(auto patch, ReadSystemTypePatch(body));
                PUDDLE_ASSIGN_OR_RETURN(auto type, deps.catalog.UpdateSystemType(
                                                       ActorOf(context), context.params.at("id"), patch));
                return JsonReply(200, SystemTypeJson(type));
              },
              {"Change a system type", "catalog", 200, "SystemTypePatch", "SystemType"}});

  router.Add({"GET", "/api/v1/settings", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {}));
                boost::json::array options;
                for (const auto& option : deps.config.idle_timeout_options) {
                  options.push_back({{"label", option.label}, {"minutes", option.minutes}});
                }
                return JsonReply(200, boost::json::object{
                                          {"idleTimeoutOptions", std::move(options)},
                                          {"currency", deps.config.currency},
                                          {"maxKeepAliveMinutes", deps.config.max_keep_alive_minutes}});
              },
              {"Settings clients need: idle timeout options, currency", "catalog", 200, "",
               "Settings"}});
}

}  // namespace puddle::api
