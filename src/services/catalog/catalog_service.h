// CatalogService: products, versions, images and system types.
//
// Everyone reads what they may launch; only admins change the catalog.
// Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/catalog.h"
#include "services/actor.h"
#include "storage/store.h"

namespace puddle {

struct ProductVersionView {
  ProductVersion version;
  std::vector<Image> images;
};

struct ProductView {
  Product product;
  std::vector<ProductVersionView> versions;
};

struct SystemTypePatch {
  std::optional<std::string> label;
  std::optional<int64_t> cpus, gpus, memory_mib, disk_gib;
  std::optional<double> price_per_hour;
  std::optional<bool> enabled;
  std::optional<std::optional<int64_t>> max_uptime_minutes;  // set to null clears it
};

class CatalogService {
 public:
  explicit CatalogService(Store& store) : store_(store) {}

  // Users see enabled versions with a ready image; admins see everything.
  Result<std::vector<ProductView>> ListProducts(const Actor& actor);
  Result<ProductView> GetProduct(const Actor& actor, const std::string& id);
  Result<ProductView> CreateProduct(const Actor& actor, const std::string& id,
                                    const std::string& label);
  Result<ProductView> UpdateProduct(const Actor& actor, const std::string& id,
                                    const std::string& label);
  Result<ProductView> AddVersion(const Actor& actor, const std::string& product_id,
                                 const std::string& version, bool enabled);
  Result<ProductView> SetVersionEnabled(const Actor& actor, const std::string& product_id,
                                        const std::string& version, bool enabled);

  Result<std::vector<Image>> ListImages(const Actor& actor);
  Result<Image> CreateImage(const Actor& actor, Image image);
  Result<Image> SetImageStatus(const Actor& actor, const std::string& id, const std::string& status);

  // Users see enabled types; admins see all.
  Result<std::vector<SystemType>> ListSystemTypes(const Actor& actor);
  Result<SystemType> GetSystemType(const Actor& actor, const std::string& id);
  Result<SystemType> CreateSystemType(const Actor& actor, SystemType type);
  Result<SystemType> UpdateSystemType(const Actor& actor, const std::string& id,
                                      const SystemTypePatch& patch);

  // Installs the default catalog on an empty database: Jupyter Notebook at
  // `jupyter_version` with a local image, and three CPU system types.
  Status EnsureDefaults(const std::string& jupyter_version);

  static Status ValidateSlug(const std::string& id, const std::string& field);
  static Status ValidateSystemType(const SystemType& type);

 private:
  Result<ProductView> ViewOf(Tx& tx, const Actor& actor, const Product& product);

  Store& store_;
};

// The launch of Debian's jupyter-notebook behind Puddle's base path.
LaunchSpec DefaultJupyterLaunch();

}  // namespace puddle
