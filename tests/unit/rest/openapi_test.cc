// The OpenAPI document against the route table it is generated from.
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "api/api.h"
#include "api/openapi.h"
#include "common/crypto.h"
#include "queue/embedded/embedded_dispatcher.h"
#include "storage/sqlite/sqlite_database.h"

namespace puddle::api {
namespace {

class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().has_value());
    dir_ = std::filesystem::temp_directory_path() / ("openapi-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    auto database = sql::SqliteDatabase::Open((dir_ / "puddle.db").string());
    ASSERT_TRUE(database.has_value());
    store_ = std::make_unique<Store>(std::move(*database), clock_);
    ASSERT_TRUE(store_->Migrate().has_value());
    auth_ = std::make_unique<AuthService>(*store_, AuthOptions{"secret-for-tests"});
    users_ = std::make_unique<UserService>(*store_);
    catalog_ = std::make_unique<CatalogService>(*store_);
    systems_ = std::make_unique<SystemService>(*store_, dispatcher_, providers_, config_,
                                               "secret-for-tests");
    api_ = std::make_unique<Api>(
        ApiDependencies{config_, *store_, *auth_, *users_, *catalog_, *systems_, metrics_});
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  boost::json::object Document() {
    http::Request request;
    request.method = "GET";
    request.path = "/api/v1/openapi.json";
    request.target = request.path;
    request.request_id = "test";
    http::Response response = api_->Handle(request);
    EXPECT_EQ(response.status, 200);
    return boost::json::parse(response.body).as_object();
  }

  std::filesystem::path dir_;
  SystemClock clock_;
  Config config_;
  EmbeddedDispatcher dispatcher_;
  ProviderMap providers_;
  Metrics metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<UserService> users_;
  std::unique_ptr<CatalogService> catalog_;
  std::unique_ptr<SystemService> systems_;
  std::unique_ptr<Api> api_;
};

std::string Lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(c));
  return text;
}

void CollectRefs(const boost::json::value& value, std::set<std::string>& refs) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.as_object()) {
      if (key == "$ref" && child.is_string()) refs.insert(std::string(child.as_string()));
      CollectRefs(child, refs);
    }
  } else if (value.is_array()) {
    for (const auto& child : value.as_array()) CollectRefs(child, refs);
  }
}

TEST_F(OpenApiTest, DocumentsEveryRouteAndMethod) {
  auto document = Document();
  EXPECT_EQ(document.at("openapi").as_string(), "3.1.0");
  const auto& paths = document.at("paths").as_object();
  for (const auto& route : api_->router().routes()) {
    ASSERT_TRUE(paths.contains(route.pattern)) << route.pattern;
    const auto& item = paths.at(route.pattern).as_object();
    EXPECT_TRUE(item.contains(Lower(route.method))) << route.method << " " << route.pattern;
  }
}

TEST_F(OpenApiTest, ListsNoRouteThatDoesNotExist) {
  auto document = Document();
  for (const auto& [path, item] : document.at("paths").as_object()) {
    for (const auto& [method, operation] : item.as_object()) {
      std::string upper(method);
      for (auto& c : upper) c = static_cast<char>(std::toupper(c));
      auto match = api_->router().Match(upper, std::string(path));
      EXPECT_NE(match.route, nullptr) << upper << " " << path;
    }
  }
}

TEST_F(OpenApiTest, EveryReferencedSchemaExists) {
  auto document = Document();
  std::set<std::string> refs;
  CollectRefs(document, refs);
  const auto& schemas = document.at("components").as_object().at("schemas").as_object();
  for (const auto& ref : refs) {
    std::string prefix = "#/components/schemas/";
    ASSERT_EQ(ref.rfind(prefix, 0), 0u) << ref;
    EXPECT_TRUE(schemas.contains(ref.substr(prefix.size()))) << ref;
  }
}

TEST_F(OpenApiTest, ContractRoutesArePresent) {
  auto document = Document();
  const auto& paths = document.at("paths").as_object();
  for (const char* path :
       {"/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/auth/me", "/api/v1/auth/token",
        "/api/v1/auth/password", "/api/v1/api-keys", "/api/v1/users", "/api/v1/users/{id}",
        "/api/v1/products", "/api/v1/images", "/api/v1/system-types", "/api/v1/settings",
        "/api/v1/systems", "/api/v1/systems/{id}", "/api/v1/systems/{id}/start",
        "/api/v1/systems/{id}/stop", "/api/v1/systems/{id}/reboot",
        "/api/v1/systems/{id}/keep-alive", "/api/v1/systems/{id}/restart-product",
        "/api/v1/systems/{id}/fail", "/api/v1/systems/{id}/events",
        "/api/v1/systems/{id}/operations", "/api/v1/systems/{id}/logs", "/healthz", "/metrics"}) {
    EXPECT_TRUE(paths.contains(path)) << path;
  }
}

TEST_F(OpenApiTest, UnknownPathIsJsonNotFound) {
  http::Request request;
  request.method = "GET";
  request.path = "/api/v1/nothing-here";
  request.request_id = "abc";
  http::Response response = api_->Handle(request);
  EXPECT_EQ(response.status, 404);
  auto body = boost::json::parse(response.body).as_object();
  EXPECT_EQ(body.at("error").at("code").as_string(), "not_found");
  EXPECT_EQ(body.at("error").at("requestId").as_string(), "abc");
}

}  // namespace
}  // namespace puddle::api
