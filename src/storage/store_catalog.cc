// Named queries for products, versions, images and system types.
#include <boost/json.hpp>

#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

namespace {

constexpr const char* kImageColumns =
    "id, product_id, version, provider, status, provider_image, launch, created_at";
constexpr const char* kSystemTypeColumns =
    "id, label, cpus, gpus, memory_mib, disk_gib, price_per_hour, enabled, max_uptime_minutes, "
    "created_at";

Result<Image> ReadImage(const sql::Row& row) {
  Image image;
  image.id = row.Text(0);
  image.product = row.Text(1);
  image.version = row.Text(2);
  image.provider = row.Text(3);
  image.status = row.Text(4);
  image.provider_image = row.OptionalText(5);
  boost::system::error_code error;
  auto launch_json = boost::json::parse(row.Text(6), error);
  if (error) return InternalError("image " + image.id + ": stored launch is not JSON");
  PUDDLE_ASSIGN_OR_RETURN(image.launch, LaunchSpecFromJson(launch_json));
  image.created_at = Time(row, 7);
  return image;
}

SystemType ReadSystemType(const sql::Row& row) {
  SystemType type;
  type.id = row.Text(0);
  type.label = row.Text(1);
  type.cpus = row.Int(2);
  type.gpus = row.Int(3);
  type.memory_mib = row.Int(4);
  type.disk_gib = row.Int(5);
  type.price_per_hour = row.Real(6);
  type.enabled = row.Bool(7);
  type.max_uptime_minutes = row.OptionalInt(8);
  type.created_at = Time(row, 9);
  return type;
}

}  // namespace

Status Tx::InsertProduct(const Product& product) {
  auto inserted = db_.Execute("INSERT INTO products (id, label, created_at) VALUES ($1, $2, $3)",
                              {product.id, product.label, Millis(product.created_at)});
  if (!inserted && inserted.error().code == ErrorCode::kConflict) {
    return MakeError(ErrorCode::kNameTaken, "product \"" + product.id + "\" exists", "id");
  }
  return inserted.map([](int64_t) {});
}

Result<std::optional<Product>> Tx::GetProduct(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(auto products, ListProducts());
  for (auto& product : products) {
    if (product.id == id) return std::optional<Product>(std::move(product));
  }
  return std::optional<Product>();
}

Result<std::vector<Product>> Tx::ListProducts() {
  PUDDLE_ASSIGN_OR_RETURN(auto rows,
                          db_.Query("SELECT id, label, created_at FROM products ORDER BY id", {}));
  std::vector<Product> products;
  for (const auto& row : rows) {
    Product product;
    product.id = row.Text(0);
    product.label = row.Text(1);
    product.created_at = Time(row, 2);
    products.push_back(std::move(product));
  }

  // Versions newest first: by creation time, then by version text.
  PUDDLE_ASSIGN_OR_RETURN(
      auto version_rows,
      db_.Query("SELECT product_id, version, enabled, created_at FROM product_versions "
                "ORDER BY created_at DESC, version DESC",
                {}));
  for (const auto& row : version_rows) {
    for (auto& product : products) {
      if (product.id != row.Text(0)) continue;
      product.versions.push_back({row.Text(1), row.Bool(2), Time(row, 3)});
    }
  }
  return products;
}

Status Tx::UpdateProductLabel(const std::string& id, const std::string& label) {
  return db_.Execute("UPDATE products SET label = $2 WHERE id = $1", {id, label})
      .map([](int64_t) {});
}

Status Tx::InsertProductVersion(const std::string& product_id, const ProductVersion& version) {
  auto inserted = db_.Execute(
      "INSERT INTO product_versions (product_id, version, enabled, created_at) "
      "VALUES ($1, $2, $3, $4)",
      {product_id, version.version, int64_t{version.enabled}, Millis(version.created_at)});
  if (!inserted && inserted.error().code == ErrorCode::kConflict) {
    return MakeError(ErrorCode::kNameTaken,
                     "version \"" + version.version + "\" of " + product_id + " exists", "version");
  }
  return inserted.map([](int64_t) {});
}

Result<bool> Tx::SetProductVersionEnabled(const std::string& product_id,
                                          const std::string& version, bool enabled) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto changed,
      db_.Execute("UPDATE product_versions SET enabled = $3 WHERE product_id = $1 AND version = $2",
                  {product_id, version, int64_t{enabled}}));
  return changed > 0;
}

Status Tx::InsertImage(const Image& image) {
  return db_
      .Execute(std::string("INSERT INTO images (") + kImageColumns +
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
               {image.id, image.product, image.version, image.provider, image.status,
                sql::OrNull(image.provider_image),
                boost::json::serialize(LaunchSpecToJson(image.launch)),
                Millis(image.created_at)})
      .map([](int64_t) {});
}

Result<std::optional<Image>> Tx::GetImage(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query(std::string("SELECT ") + kImageColumns + " FROM images WHERE id = $1", {id}));
  if (rows.empty()) return std::optional<Image>();
  PUDDLE_ASSIGN_OR_RETURN(auto image, ReadImage(rows[0]));
  return std::optional<Image>(std::move(image));
}

Result<std::vector<Image>> Tx::ListImages() {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kImageColumns + " FROM images ORDER BY id", {}));
  std::vector<Image> images;
  for (const auto& row : rows) {
    PUDDLE_ASSIGN_OR_RETURN(auto image, ReadImage(row));
    images.push_back(std::move(image));
  }
  return images;
}

Result<std::vector<Image>> Tx::ListImagesOf(const std::string& product_id,
                                            const std::string& version) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kImageColumns +
                               " FROM images WHERE product_id = $1 AND version = $2 ORDER BY id",
                           {product_id, version}));
  std::vector<Image> images;
  for (const auto& row : rows) {
    PUDDLE_ASSIGN_OR_RETURN(auto image, ReadImage(row));
    images.push_back(std::move(image));
  }
  return images;
}

Status Tx::UpdateImage(const Image& image) {
  return db_
      .Execute(
          "UPDATE images SET status = $2, provider_image = $3, launch = $4 WHERE id = $1",
          {image.id, image.status, sql::OrNull(image.provider_image),
           boost::json::serialize(LaunchSpecToJson(image.launch))})
      .map([](int64_t) {});
}

Status Tx::InsertSystemType(const SystemType& type) {
  auto inserted = db_.Execute(
      std::string("INSERT INTO system_types (") + kSystemTypeColumns +
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
      {type.id, type.label, type.cpus, type.gpus, type.memory_mib, type.disk_gib,
       type.price_per_hour, int64_t{type.enabled}, sql::OrNull(type.max_uptime_minutes),
       Millis(type.created_at)});
  if (!inserted && inserted.error().code == ErrorCode::kConflict) {
    return MakeError(ErrorCode::kNameTaken, "system type \"" + type.id + "\" exists", "id");
  }
  return inserted.map([](int64_t) {});
}

Result<std::optional<SystemType>> Tx::GetSystemType(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kSystemTypeColumns +
                               " FROM system_types WHERE id = $1",
                           {id}));
  if (rows.empty()) return std::optional<SystemType>();
  return std::optional<SystemType>(ReadSystemType(rows[0]));
}

Result<std::vector<SystemType>> Tx::ListSystemTypes() {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query(std::string("SELECT ") + kSystemTypeColumns + " FROM system_types ORDER BY id", {}));
  std::vector<SystemType> types;
  for (const auto& row : rows) types.push_back(ReadSystemType(row));
  return types;
}

Status Tx::UpdateSystemType(const SystemType& type) {
  return db_
      .Execute(
          "UPDATE system_types SET label = $2, cpus = $3, gpus = $4, memory_mib = $5, "
          "disk_gib = $6, price_per_hour = $7, enabled = $8, max_uptime_minutes = $9 "
          "WHERE id = $1",
          {type.id, type.label, type.cpus, type.gpus, type.memory_mib, type.disk_gib,
           type.price_per_hour, int64_t{type.enabled}, sql::OrNull(type.max_uptime_minutes)})
      .map([](int64_t) {});
}

}  // namespace puddle
