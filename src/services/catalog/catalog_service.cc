#include "services/catalog/catalog_service.h"

#include <regex>

#include "common/ids.h"

namespace puddle {

namespace {

Status RequireAdmin(const Actor& actor) {
  if (!actor.IsAdmin()) return MakeError(ErrorCode::kForbidden, "only admins may change the catalog");
  return Ok();
}

tl::unexpected<Error> Invalid(const std::string& field, const std::string& message) {
  return MakeError(ErrorCode::kValidationFailed, message, field);
}

}  // namespace

LaunchSpec DefaultJupyterLaunch() {
  LaunchSpec spec;
  spec.command = {"jupyter-notebook",
                  "--no-browser",
                  "--ip={address}",
                  "--port={port}",
                  "--NotebookApp.port_retries=0",
                  "--NotebookApp.base_url={basePath}",
                  "--notebook-dir={dataDir}"};
  spec.env = {{"JUPYTER_TOKEN", "{token}"},
              {"JUPYTER_CONFIG_DIR", "{dataDir}/.jupyter"},
              {"JUPYTER_DATA_DIR", "{dataDir}/.local/share/jupyter"},
              {"JUPYTER_RUNTIME_DIR", "{dataDir}/.local/share/jupyter/runtime"},
              {"IPYTHONDIR", "{dataDir}/.ipython"}};
  spec.health_path = "api/status";
  spec.base_path_mode = "prefix";
  spec.start_timeout_seconds = 120;
  return spec;
}

Status CatalogService::ValidateSlug(const std::string& id, const std::string& field) {
  static const std::regex kSlug("^[a-z][a-z0-9-]{0,31}$");
  if (!std::regex_match(id, kSlug)) {
    return Invalid(field, field + " \"" + id +
                              "\" is invalid: use 1 to 32 lowercase letters, digits and hyphens, "
                              "starting with a letter");
  }
  return Ok();
}

Status CatalogService::ValidateSystemType(const SystemType& type) {
  if (type.label.empty() || type.label.size() > 100) return Invalid("label", "label must be 1 to 100 characters");
  if (type.cpus < 1 || type.cpus > 1024) return Invalid("cpus", "cpus must be between 1 and 1024");
  if (type.gpus < 0 || type.gpus > 64) return Invalid("gpus", "gpus must be between 0 and 64");
  if (type.memory_mib < 64) return Invalid("memoryMiB", "memoryMiB must be at least 64");
  if (type.disk_gib < 1) return Invalid("diskGiB", "diskGiB must be at least 1");
  if (type.price_per_hour < 0) return Invalid("pricePerHour", "pricePerHour must not be negative");
  if (type.max_uptime_minutes && *type.max_uptime_minutes < 1) {
    return Invalid("maxUptimeMinutes", "maxUptimeMinutes must be positive or null");
  }
  return Ok();
}

Result<ProductView> CatalogService::ViewOf(Tx& tx, const Actor& actor, const Product& product) {
  ProductView view;
  view.product = product;
  for (const auto& version : product.versions) {
    PUDDLE_ASSIGN_OR_RETURN(auto images, tx.ListImagesOf(product.id, version.version));
    if (!actor.IsAdmin()) {
      std::erase_if(images, [](const Image& image) { return image.status != "ready"; });
      if (!version.enabled || images.empty()) continue;
    }
    view.versions.push_back({version, std::move(images)});
  }
  return view;
}

Result<std::vector<ProductView>> CatalogService::ListProducts(const Actor& actor) {
  return store_.ReadValue<std::vector<ProductView>>([&](Tx& tx) -> Result<std::vector<ProductView>> {
    PUDDLE_ASSIGN_OR_RETURN(auto products, tx.ListProducts());
    std::vector<ProductView> views;
    for (const auto& product : products) {
      PUDDLE_ASSIGN_OR_RETURN(auto view, ViewOf(tx, actor, product));
      if (!actor.IsAdmin() && view.versions.empty()) continue;
      views.push_back(std::move(view));
    }
    return views;
  });
}

Result<ProductView> CatalogService::GetProduct(const Actor& actor, const std::string& id) {
  return store_.ReadValue<ProductView>([&](Tx& tx) -> Result<ProductView> {
    PUDDLE_ASSIGN_OR_RETURN(auto product, tx.GetProduct(id));
    if (!product) return MakeError(ErrorCode::kNotFound, "product \"" + id + "\" not found");
    PUDDLE_ASSIGN_OR_RETURN(auto view, ViewOf(tx, actor, *product));
    if (!actor.IsAdmin() && view.versions.empty()) {
      return MakeError(ErrorCode::kNotFound, "product \"" + id + "\" not found");
    }
    return view;
  });
}

Result<ProductView> CatalogService::CreateProduct(const Actor& actor, const std::string& id,
                                                  const std::string& label) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  PUDDLE_RETURN_IF_ERROR(ValidateSlug(id, "id"));
  if (label.empty() || label.size() > 100) return Invalid("label", "label must be 1 to 100 characters");
  return store_.WriteValue<ProductView>([&](Tx& tx) -> Result<ProductView> {
    Product product{id, label, {}, tx.Now()};
    PUDDLE_RETURN_IF_ERROR(tx.InsertProduct(product));
    return ViewOf(tx, actor, product);
  });
}

Result<ProductView> CatalogService::UpdateProduct(const Actor& actor, const std::string& id,
                                                  const std::string& label) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  if (label.empty() || label.size() > 100) return Invalid("label", "label must be 1 to 100 characters");
  return store_.WriteValue<ProductView>([&](Tx& tx) -> Result<ProductView> {
    PUDDLE_ASSIGN_OR_RETURN(auto product, tx.GetProduct(id));
    if (!product) return MakeError(ErrorCode::kNotFound, "product \"" + id + "\" not found");
    PUDDLE_RETURN_IF_ERROR(tx.UpdateProductLabel(id, label));
    product->label = label;
    return ViewOf(tx, actor, *product);
  });
}

Result<ProductView> CatalogService::AddVersion(const Actor& actor, const std::string& product_id,
                                               const std::string& version, bool enabled) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  static const std::regex kVersion("^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$");
  if (!std::regex_match(version, kVersion)) {
    return Invalid("version", "version must be 1 to 64 characters of letters, digits and . _ + -");
  }
  return store_.WriteValue<ProductView>([&](Tx& tx) -> Result<ProductView> {
    PUDDLE_ASSIGN_OR_RETURN(auto product, tx.GetProduct(product_id));
    if (!product) return MakeError(ErrorCode::kNotFound, "product \"" + product_id + "\" not found");
    PUDDLE_RETURN_IF_ERROR(tx.InsertProductVersion(product_id, {version, enabled, tx.Now()}));
    PUDDLE_ASSIGN_OR_RETURN(product, tx.GetProduct(product_id));
    return ViewOf(tx, actor, *product);
  });
}

Result<ProductView> CatalogService::SetVersionEnabled(const Actor& actor,
                                                      const std::string& product_id,
                                                      const std::string& version, bool enabled) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  return store_.WriteValue<ProductView>([&](Tx& tx) -> Result<ProductView> {
    PUDDLE_ASSIGN_OR_RETURN(bool changed, tx.SetProductVersionEnabled(product_id, version, enabled));
    if (!changed) {
      return MakeError(ErrorCode::kNotFound,
                       "version \"" + version + "\" of product \"" + product_id + "\" not found");
    }
    PUDDLE_ASSIGN_OR_RETURN(auto product, tx.GetProduct(product_id));
    return ViewOf(tx, actor, *product);
  });
}

Result<std::vector<Image>> CatalogService::ListImages(const Actor& actor) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  return store_.ReadValue<std::vector<Image>>([](Tx& tx) { return tx.ListImages(); });
}

Result<Image> CatalogService::CreateImage(const Actor& actor, Image image) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  if (image.provider != "local" && image.provider != "fake") {
    return Invalid("provider", "provider must be \"local\" or \"fake\"; other providers are not built yet");
  }
  return store_.WriteValue<Image>([&](Tx& tx) -> Result<Image> {
    PUDDLE_ASSIGN_OR_RETURN(auto product, tx.GetProduct(image.product));
    if (!product) return Invalid("product", "product \"" + image.product + "\" does not exist");
    bool has_version = false;
    for (const auto& version : product->versions) has_version |= version.version == image.version;
    if (!has_version) {
      return Invalid("version", "version \"" + image.version + "\" of " + image.product + " does not exist");
    }
    image.id = NewId(12);
    image.status = "ready";
    image.created_at = tx.Now();
    PUDDLE_RETURN_IF_ERROR(tx.InsertImage(image));
    return image;
  });
}

Result<Image> CatalogService::SetImageStatus(const Actor& actor, const std::string& id,
                                             const std::string& status) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  if (status != "ready" && status != "disabled") {
    return Invalid("status", "status must be \"ready\" or \"disabled\"");
  }
  return store_.WriteValue<Image>([&](Tx& tx) -> Result<Image> {
    PUDDLE_ASSIGN_OR_RETURN(auto image, tx.GetImage(id));
    if (!image) return MakeError(ErrorCode::kNotFound, "image \"" + id + "\" not found");
    image->status = status;
    PUDDLE_RETURN_IF_ERROR(tx.UpdateImage(*image));
    return std::move(*image);
  });
}

Result<std::vector<SystemType>> CatalogService::ListSystemTypes(const Actor& actor) {
  PUDDLE_ASSIGN_OR_RETURN(auto types, store_.ReadValue<std::vector<SystemType>>(
                                          [](Tx& tx) { return tx.ListSystemTypes(); }));
  if (!actor.IsAdmin()) std::erase_if(types, [](const SystemType& type) { return !type.enabled; });
  return types;
}

Result<SystemType> CatalogService::GetSystemType(const Actor& actor, const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(auto type, store_.ReadValue<std::optional<SystemType>>(
                                         [&](Tx& tx) { return tx.GetSystemType(id); }));
  if (!type || (!actor.IsAdmin() && !type->enabled)) {
    return MakeError(ErrorCode::kNotFound, "system type \"" + id + "\" not found");
  }
  return std::move(*type);
}

Result<SystemType> CatalogService::CreateSystemType(const Actor& actor, SystemType type) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  PUDDLE_RETURN_IF_ERROR(ValidateSlug(type.id, "id"));
  PUDDLE_RETURN_IF_ERROR(ValidateSystemType(type));
  return store_.WriteValue<SystemType>([&](Tx& tx) -> Result<SystemType> {
    type.created_at = tx.Now();
    PUDDLE_RETURN_IF_ERROR(tx.InsertSystemType(type));
    return type;
  });
}

Result<SystemType> CatalogService::UpdateSystemType(const Actor& actor, const std::string& id,
                                                    const SystemTypePatch& patch) {
  PUDDLE_RETURN_IF_ERROR(RequireAdmin(actor));
  return store_.WriteValue<SystemType>([&](Tx& tx) -> Result<SystemType> {
    PUDDLE_ASSIGN_OR_RETURN(auto found, tx.GetSystemType(id));
    if (!found) return MakeError(ErrorCode::kNotFound, "system type \"" + id + "\" not found");
    SystemType type = std::move(*found);
    if (patch.label) type.label = *patch.label;
    if (patch.cpus) type.cpus = *patch.cpus;
    if (patch.gpus) type.gpus = *patch.gpus;
    if (patch.memory_mib) type.memory_mib = *patch.memory_mib;
    if (patch.disk_gib) type.disk_gib = *patch.disk_gib;
    if (patch.price_per_hour) type.price_per_hour = *patch.price_per_hour;
    if (patch.enabled) type.enabled = *patch.enabled;
    if (patch.max_uptime_minutes) type.max_uptime_minutes = *patch.max_uptime_minutes;
    PUDDLE_RETURN_IF_ERROR(ValidateSystemType(type));
    PUDDLE_RETURN_IF_ERROR(tx.UpdateSystemType(type));
    return type;
  });
}

Status CatalogService::EnsureDefaults(const std::string& jupyter_version) {
  return store_.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto done, tx.GetSetting("catalog.defaults_installed"));
    if (done) return Ok();
    PUDDLE_RETURN_IF_ERROR(tx.PutSettingIfAbsent("catalog.defaults_installed", "1"));
    TimePoint now = tx.Now();

    if (!jupyter_version.empty()) {
      PUDDLE_RETURN_IF_ERROR(tx.InsertProduct({"jupyter", "Jupyter Notebook", {}, now}));
      PUDDLE_RETURN_IF_ERROR(tx.InsertProductVersion("jupyter", {jupyter_version, true, now}));
      Image image;
      image.id = NewId(12);
      image.product = "jupyter";
      image.version = jupyter_version;
      image.provider = "local";
      image.status = "ready";
      image.launch = DefaultJupyterLaunch();
      image.created_at = now;
      PUDDLE_RETURN_IF_ERROR(tx.InsertImage(image));
    }

    // Prices are examples for admins to change; the local host has no price list.
    const SystemType defaults[] = {
        {"cpu-small", "Small CPU (1 CPU, 2 GiB)", 1, 0, 2048, 10, 0.05, true, std::nullopt, now},
        {"cpu-medium", "Medium CPU (2 CPUs, 4 GiB)", 2, 0, 4096, 20, 0.10, true, std::nullopt, now},
        {"cpu-large", "Large CPU (4 CPUs, 8 GiB)", 4, 0, 8192, 40, 0.20, true, std::nullopt, now},
    };
    for (const auto& type : defaults) PUDDLE_RETURN_IF_ERROR(tx.InsertSystemType(type));
    return Ok();
  });
}

}  // namespace puddle
