// Settings, users, API keys, credentials, login failures and the catalog, on every dialect.
#include <gmock/gmock.h>

#include <mutex>
#include <set>
#include <thread>

#include "contract_fixture.h"

namespace puddle::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;

using StoreUsersTest = StoreContractTest;
using StoreCatalogTest = StoreContractTest;

User MakeUser(const std::string& id, const std::string& username, TimePoint created_at) {
  User user;
  user.id = id;
  user.username = username;
  user.created_at = created_at;
  return user;
}

TEST_P(StoreUsersTest, SettingPutIfAbsentKeepsFirstValue) {
  auto missing = store_->ReadValue<std::optional<std::string>>(
      [](Tx& tx) { return tx.GetSetting("token_secret"); });
  ASSERT_OK(missing);
  EXPECT_EQ(*missing, std::nullopt);

  auto first = store_->WriteValue<std::string>(
      [](Tx& tx) { return tx.PutSettingIfAbsent("token_secret", "first"); });
  ASSERT_OK(first);
  EXPECT_EQ(*first, "first");
  auto second = store_->WriteValue<std::string>(
      [](Tx& tx) { return tx.PutSettingIfAbsent("token_secret", "second"); });
  ASSERT_OK(second);
  EXPECT_EQ(*second, "first");

  auto stored = store_->ReadValue<std::optional<std::string>>(
      [](Tx& tx) { return tx.GetSetting("token_secret"); });
  ASSERT_OK(stored);
  EXPECT_EQ(*stored, "first");
}

TEST_P(StoreUsersTest, ConcurrentPutsKeepOneValue) {
  std::mutex mutex;
  std::set<std::string> returned;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto value = store_->WriteValue<std::string>([&](Tx& tx) {
        return tx.PutSettingIfAbsent("installation_id", "value-" + std::to_string(i));
      });
      std::lock_guard lock(mutex);
      if (value) {
        returned.insert(*value);
      } else {
        errors.push_back(value.error().message);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_THAT(errors, ::testing::IsEmpty());
  EXPECT_EQ(returned.size(), 1u);
}

TEST_P(StoreUsersTest, UserRoundTripAndNumbers) {
  User admin = MakeUser("user-a", "alice", TestStart());
  admin.role = Role::kAdmin;
  admin.disabled = false;
  admin.password_hash = "$argon2id$hash";
  admin.quota.systems = 3;
  admin.quota.running_systems = 1;
  admin.quota.monthly_budget = 12.5;
  admin.credential_generation = 7;
  User plain = MakeUser("user-b", "bob", TestStart() + minutes(1));
  plain.disabled = true;
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertUser(admin));
    return tx.InsertUser(plain).map([](const User&) {});
  }));

  auto read = store_->ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUser("user-a"); });
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  const User& got = **read;
  EXPECT_EQ(got.username, "alice");
  EXPECT_EQ(got.role, Role::kAdmin);
  EXPECT_FALSE(got.disabled);
  EXPECT_EQ(got.password_hash, "$argon2id$hash");
  EXPECT_EQ(got.quota.systems, 3);
  EXPECT_EQ(got.quota.running_systems, 1);
  EXPECT_EQ(got.quota.monthly_budget, 12.5);
  EXPECT_EQ(got.credential_generation, 7);
  EXPECT_EQ(got.created_at, TestStart());

  auto by_name =
      store_->ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUserByUsername("bob"); });
  ASSERT_OK(by_name);
  ASSERT_TRUE(by_name->has_value());
  EXPECT_EQ((*by_name)->id, "user-b");
  EXPECT_TRUE((*by_name)->disabled);
  EXPECT_EQ((*by_name)->quota.systems, std::nullopt);
  EXPECT_EQ((*by_name)->quota.monthly_budget, std::nullopt);

  auto numbers = store_->ReadValue<std::pair<int64_t, int64_t>>(
      [](Tx& tx) -> Result<std::pair<int64_t, int64_t>> {
        PUDDLE_ASSIGN_OR_RETURN(int64_t a, tx.UserNumber("user-a"));
        PUDDLE_ASSIGN_OR_RETURN(int64_t b, tx.UserNumber("user-b"));
        return std::make_pair(a, b);
      });
  ASSERT_OK(numbers);
  EXPECT_EQ(numbers->first, 1);
  EXPECT_EQ(numbers->second, 2);

  auto unknown = store_->ReadValue<int64_t>([](Tx& tx) { return tx.UserNumber("nobody"); });
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  auto absent = store_->ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUser("nobody"); });
  ASSERT_OK(absent);
  EXPECT_FALSE(absent->has_value());

  auto admins = store_->ReadValue<int64_t>([](Tx& tx) { return tx.CountEnabledAdmins(); });
  ASSERT_OK(admins);
  EXPECT_EQ(*admins, 1);
}

TEST_P(StoreUsersTest, UpdateUserClearsQuota) {
  User user = MakeUser("user-a", "alice", TestStart());
  user.quota.systems = 3;
  user.quota.monthly_budget = 10;
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.InsertUser(user).map([](const User&) {}); }));

  user.role = Role::kAdmin;
  user.quota = Quota{};
  user.credential_generation = 2;
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.UpdateUser(user); }));

  auto read = store_->ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUser("user-a"); });
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->role, Role::kAdmin);
  EXPECT_EQ((*read)->quota.systems, std::nullopt);
  EXPECT_EQ((*read)->quota.monthly_budget, std::nullopt);
  EXPECT_EQ((*read)->credential_generation, 2);
}

TEST_P(StoreUsersTest, ListUsersPagesNewestFirst) {
  // user-b and user-c share a creation time, so the id breaks the tie.
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    for (auto [id, offset] : std::vector<std::pair<std::string, int>>{
             {"user-a", 0}, {"user-b", 1}, {"user-c", 1}, {"user-d", 2}, {"user-e", 3}}) {
      PUDDLE_RETURN_IF_ERROR(
          tx.InsertUser(MakeUser(id, "name-" + id, TestStart() + minutes(offset))));
    }
    return Ok();
  }));

  std::vector<std::string> seen;
  std::vector<size_t> page_sizes;
  PageRequest page;
  page.limit = 2;
  for (int pages = 0; pages < 10; ++pages) {
    auto listed = store_->ReadValue<Page<User>>([&](Tx& tx) { return tx.ListUsers(page); });
    ASSERT_OK(listed);
    page_sizes.push_back(listed->items.size());
    for (const auto& user : listed->items) seen.push_back(user.id);
    if (listed->next_cursor.empty()) break;
    page.cursor = listed->next_cursor;
  }
  EXPECT_THAT(seen, ElementsAre("user-e", "user-d", "user-c", "user-b", "user-a"));
  EXPECT_THAT(page_sizes, ElementsAre(2u, 2u, 1u));
}

TEST_P(StoreUsersTest, ListUsersRejectsForeignCursor) {
  PageRequest page;
  page.cursor = "not-a-cursor!";
  auto listed = store_->ReadValue<Page<User>>([&](Tx& tx) { return tx.ListUsers(page); });
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, ErrorCode::kValidationFailed);
}

TEST_P(StoreUsersTest, DuplicateUsernameIsNameTaken) {
  ASSERT_OK(store_->Write([](Tx& tx) {
    return tx.InsertUser(MakeUser("user-a", "alice", TestStart())).map([](const User&) {});
  }));

  auto duplicate = store_->Write([](Tx& tx) {
    return tx.InsertUser(MakeUser("user-b", "alice", TestStart())).map([](const User&) {});
  });
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code, ErrorCode::kNameTaken);
  EXPECT_EQ(duplicate.error().field, "username");

  // The failed transaction left nothing behind and the store keeps working.
  auto other = store_->Write([](Tx& tx) {
    return tx.InsertUser(MakeUser("user-c", "carol", TestStart())).map([](const User&) {});
  });
  ASSERT_OK(other);
  auto missing =
      store_->ReadValue<std::optional<User>>([](Tx& tx) { return tx.GetUser("user-b"); });
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());
}

TEST_P(StoreUsersTest, ConcurrentInsertsGetDistinctNumbers) {
  constexpr int kThreads = 4;
  constexpr int kUsersPerThread = 5;
  std::mutex mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kUsersPerThread; ++i) {
        std::string id = "user-" + std::to_string(t) + "-" + std::to_string(i);
        auto inserted = store_->Write([&](Tx& tx) {
          return tx.InsertUser(MakeUser(id, "name-" + id, TestStart())).map([](const User&) {});
        });
        if (!inserted) {
          std::lock_guard lock(mutex);
          errors.push_back(id + ": " + inserted.error().message);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_THAT(errors, ::testing::IsEmpty());

  auto numbers = store_->ReadValue<std::set<int64_t>>([&](Tx& tx) -> Result<std::set<int64_t>> {
    std::set<int64_t> found;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kUsersPerThread; ++i) {
        PUDDLE_ASSIGN_OR_RETURN(
            int64_t number, tx.UserNumber("user-" + std::to_string(t) + "-" + std::to_string(i)));
        found.insert(number);
      }
    }
    return found;
  });
  ASSERT_OK(numbers);
  ASSERT_EQ(numbers->size(), static_cast<size_t>(kThreads * kUsersPerThread));
  EXPECT_EQ(*numbers->begin(), 1);
  EXPECT_EQ(*numbers->rbegin(), kThreads * kUsersPerThread);
}

TEST_P(StoreUsersTest, ApiKeysAndCredentials) {
  ASSERT_OK(store_->Write([](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertUser(MakeUser("user-a", "alice", TestStart())));
    PUDDLE_RETURN_IF_ERROR(tx.InsertUser(MakeUser("user-b", "bob", TestStart())));
    for (int i = 0; i < 3; ++i) {
      ApiKey key;
      key.id = "key-" + std::to_string(i);
      key.user_id = "user-a";
      key.name = "laptop " + std::to_string(i);
      key.secret_hash = "hash-" + std::to_string(i);
      key.created_at = TestStart() + minutes(i);
      PUDDLE_RETURN_IF_ERROR(tx.InsertApiKey(key));
    }
    for (const char* hash : {"session-1", "session-2", "token-1"}) {
      Credential credential;
      credential.hash = hash;
      credential.kind = std::string(hash).starts_with("token") ? CredentialKind::kToken
                                                               : CredentialKind::kSession;
      credential.user_id = "user-a";
      credential.credential_generation = 4;
      credential.created_at = TestStart();
      credential.last_used_at = TestStart();
      credential.expires_at = TestStart() + minutes(60);
      PUDDLE_RETURN_IF_ERROR(tx.InsertCredential(credential));
    }
    return Ok();
  }));

  PageRequest page;
  page.limit = 2;
  auto first =
      store_->ReadValue<Page<ApiKey>>([&](Tx& tx) { return tx.ListApiKeys("user-a", page); });
  ASSERT_OK(first);
  ASSERT_EQ(first->items.size(), 2u);
  EXPECT_EQ(first->items[0].id, "key-2");
  EXPECT_EQ(first->items[0].name, "laptop 2");
  EXPECT_EQ(first->items[1].id, "key-1");
  page.cursor = first->next_cursor;
  auto second =
      store_->ReadValue<Page<ApiKey>>([&](Tx& tx) { return tx.ListApiKeys("user-a", page); });
  ASSERT_OK(second);
  ASSERT_EQ(second->items.size(), 1u);
  EXPECT_EQ(second->items[0].id, "key-0");
  EXPECT_TRUE(second->next_cursor.empty());

  auto foreign =
      store_->WriteValue<bool>([](Tx& tx) { return tx.DeleteApiKey("key-0", "user-b"); });
  ASSERT_OK(foreign);
  EXPECT_FALSE(*foreign);
  auto own = store_->WriteValue<bool>([](Tx& tx) { return tx.DeleteApiKey("key-0", "user-a"); });
  ASSERT_OK(own);
  EXPECT_TRUE(*own);

  ASSERT_OK(store_->Write([](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.TouchCredential("token-1", TestStart() + minutes(5)));
    return tx.DeleteCredentialsOfUser("user-a", "token-1");
  }));
  auto credentials = store_->ReadValue<std::vector<std::optional<Credential>>>(
      [](Tx& tx) -> Result<std::vector<std::optional<Credential>>> {
        std::vector<std::optional<Credential>> found;
        for (const char* hash : {"session-1", "session-2", "token-1"}) {
          PUDDLE_ASSIGN_OR_RETURN(auto credential, tx.GetCredential(hash));
          found.push_back(credential);
        }
        return found;
      });
  ASSERT_OK(credentials);
  EXPECT_FALSE((*credentials)[0].has_value());
  EXPECT_FALSE((*credentials)[1].has_value());
  ASSERT_TRUE((*credentials)[2].has_value());
  EXPECT_EQ((*credentials)[2]->kind, CredentialKind::kToken);
  EXPECT_EQ((*credentials)[2]->credential_generation, 4);
  EXPECT_EQ((*credentials)[2]->last_used_at, TestStart() + minutes(5));
  EXPECT_EQ((*credentials)[2]->expires_at, TestStart() + minutes(60));
}

TEST_P(StoreUsersTest, LoginFailuresByAddressAndTime) {
  ASSERT_OK(store_->Write([](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertLoginFailure("alice", "10.0.0.1"));
    PUDDLE_RETURN_IF_ERROR(tx.InsertLoginFailure("alice", "10.0.0.1"));
    return tx.InsertLoginFailure("alice", "10.0.0.2");
  }));
  clock_.Advance(minutes(1));
  ASSERT_OK(store_->Write([](Tx& tx) { return tx.InsertLoginFailure("bob", "10.0.0.1"); }));

  auto count = [&](const std::optional<std::string>& address, TimePoint since) -> int64_t {
    auto counted = store_->ReadValue<int64_t>(
        [&](Tx& tx) { return tx.CountLoginFailures("alice", address, since); });
    EXPECT_TRUE(counted) << counted.error().message;
    return counted.value_or(-1);
  };
  EXPECT_EQ(count(std::nullopt, TestStart()), 3);
  EXPECT_EQ(count("10.0.0.1", TestStart()), 2);
  EXPECT_EQ(count("10.0.0.2", TestStart()), 1);
  EXPECT_EQ(count("10.9.9.9", TestStart()), 0);
  EXPECT_EQ(count(std::nullopt, TestStart() + seconds(1)), 0);

  auto oldest = store_->ReadValue<std::optional<TimePoint>>(
      [](Tx& tx) { return tx.OldestLoginFailure("bob", std::nullopt, TestStart()); });
  ASSERT_OK(oldest);
  EXPECT_EQ(*oldest, TestStart() + minutes(1));
  auto none = store_->ReadValue<std::optional<TimePoint>>(
      [](Tx& tx) { return tx.OldestLoginFailure("alice", std::string("10.9.9.9"), TestStart()); });
  ASSERT_OK(none);
  EXPECT_EQ(*none, std::nullopt);

  ASSERT_OK(store_->Write(
      [](Tx& tx) { return tx.DeleteLoginFailuresBefore(TestStart() + seconds(30)); }));
  EXPECT_EQ(count(std::nullopt, TestStart()), 0);
  auto bob = store_->ReadValue<int64_t>(
      [](Tx& tx) { return tx.CountLoginFailures("bob", std::string("10.0.0.1"), TestStart()); });
  ASSERT_OK(bob);
  EXPECT_EQ(*bob, 1);
}

TEST_P(StoreCatalogTest, ProductsAndVersionsNewestFirst) {
  ASSERT_OK(store_->Write([](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertProduct({"jupyter", "Jupyter Notebook", {}, TestStart()}));
    PUDDLE_RETURN_IF_ERROR(tx.InsertProduct({"h2o", "H2O-3", {}, TestStart()}));
    PUDDLE_RETURN_IF_ERROR(tx.InsertProductVersion("jupyter", {"6.3", true, TestStart()}));
    PUDDLE_RETURN_IF_ERROR(
        tx.InsertProductVersion("jupyter", {"6.4", true, TestStart() + minutes(1)}));
    return tx.InsertProductVersion("jupyter", {"7.0", true, TestStart() + minutes(1)});
  }));

  auto duplicate = store_->Write([](Tx& tx) {
    return tx.InsertProduct({"jupyter", "again", {}, TestStart()});
  });
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code, ErrorCode::kNameTaken);
  auto duplicate_version = store_->Write([](Tx& tx) {
    return tx.InsertProductVersion("jupyter", {"6.4", true, TestStart()});
  });
  ASSERT_FALSE(duplicate_version);
  EXPECT_EQ(duplicate_version.error().code, ErrorCode::kNameTaken);

  auto disabled = store_->WriteValue<bool>(
      [](Tx& tx) { return tx.SetProductVersionEnabled("jupyter", "6.3", false); });
  ASSERT_OK(disabled);
  EXPECT_TRUE(*disabled);
  auto unknown = store_->WriteValue<bool>(
      [](Tx& tx) { return tx.SetProductVersionEnabled("jupyter", "9.9", false); });
  ASSERT_OK(unknown);
  EXPECT_FALSE(*unknown);
  ASSERT_OK(store_->Write([](Tx& tx) { return tx.UpdateProductLabel("h2o", "H2O-3 AutoML"); }));

  auto products = store_->ReadValue<std::vector<Product>>([](Tx& tx) { return tx.ListProducts(); });
  ASSERT_OK(products);
  ASSERT_EQ(products->size(), 2u);
  EXPECT_EQ((*products)[0].id, "h2o");
  EXPECT_EQ((*products)[0].label, "H2O-3 AutoML");
  EXPECT_TRUE((*products)[0].versions.empty());
  const Product& jupyter = (*products)[1];
  ASSERT_EQ(jupyter.versions.size(), 3u);
  EXPECT_EQ(jupyter.versions[0].version, "7.0");
  EXPECT_EQ(jupyter.versions[1].version, "6.4");
  EXPECT_EQ(jupyter.versions[2].version, "6.3");
  EXPECT_FALSE(jupyter.versions[2].enabled);
  EXPECT_TRUE(jupyter.versions[0].enabled);
}

TEST_P(StoreCatalogTest, ImagesAndSystemTypes) {
  Image image;
  image.id = "jupyter-6-4";
  image.product = "jupyter";
  image.version = "6.4";
  image.provider = "local";
  image.launch.command = {"jupyter", "notebook", "--port={port}"};
  image.launch.env = {{"TOKEN", "{token}"}};
  image.created_at = TestStart();
  SystemType small{"cpu-small", "Small", 2, 0, 4096, 20, 0.36, true, std::nullopt, TestStart()};
  SystemType gpu{"a-gpu", "GPU", 8, 1, 65536, 200, 3.0625, false, int64_t{240}, TestStart()};
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertProduct({"jupyter", "Jupyter", {}, TestStart()}));
    PUDDLE_RETURN_IF_ERROR(tx.InsertProductVersion("jupyter", {"6.4", true, TestStart()}));
    PUDDLE_RETURN_IF_ERROR(tx.InsertImage(image));
    PUDDLE_RETURN_IF_ERROR(tx.InsertSystemType(small));
    return tx.InsertSystemType(gpu);
  }));

  image.status = "building";
  image.provider_image = "ami-123";
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.UpdateImage(image); }));
  auto images = store_->ReadValue<std::vector<Image>>(
      [](Tx& tx) { return tx.ListImagesOf("jupyter", "6.4"); });
  ASSERT_OK(images);
  ASSERT_EQ(images->size(), 1u);
  EXPECT_EQ((*images)[0].status, "building");
  EXPECT_EQ((*images)[0].provider_image, "ami-123");
  EXPECT_EQ((*images)[0].launch.command, image.launch.command);
  EXPECT_EQ((*images)[0].launch.env, image.launch.env);
  auto other = store_->ReadValue<std::vector<Image>>(
      [](Tx& tx) { return tx.ListImagesOf("jupyter", "7.0"); });
  ASSERT_OK(other);
  EXPECT_TRUE(other->empty());

  auto duplicate = store_->Write([&](Tx& tx) { return tx.InsertSystemType(small); });
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code, ErrorCode::kNameTaken);

  small.price_per_hour = 0.5;
  small.max_uptime_minutes = 90;
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.UpdateSystemType(small); }));
  auto types =
      store_->ReadValue<std::vector<SystemType>>([](Tx& tx) { return tx.ListSystemTypes(); });
  ASSERT_OK(types);
  ASSERT_EQ(types->size(), 2u);
  EXPECT_EQ((*types)[0].id, "a-gpu");
  EXPECT_EQ((*types)[0].price_per_hour, 3.0625);
  EXPECT_EQ((*types)[0].max_uptime_minutes, 240);
  EXPECT_FALSE((*types)[0].enabled);
  EXPECT_EQ((*types)[0].memory_mib, 65536);
  EXPECT_EQ((*types)[1].id, "cpu-small");
  EXPECT_EQ((*types)[1].price_per_hour, 0.5);
  EXPECT_EQ((*types)[1].max_uptime_minutes, 90);
  EXPECT_TRUE((*types)[1].enabled);
}

INSTANTIATE_TEST_SUITE_P(Dialects, StoreUsersTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);
INSTANTIATE_TEST_SUITE_P(Dialects, StoreCatalogTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

}  // namespace
}  // namespace puddle::testing
