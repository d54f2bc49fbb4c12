// Systems, operations, events and cost sessions, on every dialect.
#include <gmock/gmock.h>

#include <algorithm>
#include <map>

#include "contract_fixture.h"

namespace puddle::testing {
namespace {

using std::chrono::minutes;
using ::testing::ElementsAre;

System MakeSystem(const std::string& id, const std::string& owner_id, const std::string& name,
                  SystemStatus status, int created_minute, const std::string& product = "jupyter",
                  const std::string& system_type = "small") {
  System system;
  system.id = id;
  system.name = name;
  system.owner_id = owner_id;
  system.product = product;
  system.version = "6.4";
  system.system_type = system_type;
  system.image_id = "jupyter-6-4";
  system.status = status;
  system.vm_status = VmStatus::kRunning;
  system.product_status = ProductStatus::kReady;
  system.price_per_hour = 0.36;
  system.idle_timeout_minutes = 30;
  system.provider = "fake";
  system.created_at = TestStart() + minutes(created_minute);
  system.updated_at = system.created_at;
  return system;
}

// Seven systems: s03 and s04 share a creation time, s02 and s03 share a name
// under different owners, s05 is deleted, and "Beta" sorts before lowercase
// names in byte order.
std::vector<System> ListFixture() {
  using S = SystemStatus;
  return {
      MakeSystem("s01", "user-a", "zeta", S::kRunning, 1, "jupyter", "small"),
      MakeSystem("s02", "user-a", "alpha", S::kStopped, 2, "jupyter", "large"),
      MakeSystem("s03", "user-b", "alpha", S::kRunning, 3, "h2o", "small"),
      MakeSystem("s04", "user-b", "mid", S::kFailed, 3, "jupyter", "small"),
      MakeSystem("s05", "user-a", "beta", S::kDeleted, 4, "jupyter", "small"),
      MakeSystem("s06", "user-a", "Beta", S::kQueued, 5, "h2o", "large"),
      MakeSystem("s07", "user-b", "gamma", S::kStopped, 6, "jupyter", "small"),
  };
}

// The ids of the systems that are not deleted, in the order `sort` defines:
// by the sort value, then by id, both ascending or both descending.
std::vector<std::string> ExpectedOrder(const std::vector<System>& systems,
                                       const std::string& sort) {
  bool descending = sort[0] == '-';
  std::string key = descending ? sort.substr(1) : sort;
  auto value = [&](const System& system) -> std::string {
    if (key == "name") return system.name;
    if (key == "status") return std::string(SystemStatusName(system.status));
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%020lld",
                  static_cast<long long>(ToUnixMillis(system.created_at)));
    return buffer;
  };
  std::vector<System> listed;
  for (const auto& system : systems) {
    if (system.status != SystemStatus::kDeleted) listed.push_back(system);
  }
  std::sort(listed.begin(), listed.end(), [&](const System& a, const System& b) {
    auto left = std::make_pair(value(a), a.id);
    auto right = std::make_pair(value(b), b.id);
    return descending ? right < left : left < right;
  });
  std::vector<std::string> ids;
  for (const auto& system : listed) ids.push_back(system.id);
  return ids;
}

class StoreSystemsTest : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK(store_->Write([](Tx& tx) -> Status {
      for (auto [id, username] : {std::pair{"user-a", "alice"}, std::pair{"user-b", "bob"}}) {
        User user;
        user.id = id;
        user.username = username;
        user.created_at = TestStart();
        PUDDLE_RETURN_IF_ERROR(tx.InsertUser(user));
      }
      return Ok();
    }));
  }

  Status Insert(const std::vector<System>& systems) {
    return store_->Write([&](Tx& tx) -> Status {
      for (const auto& system : systems) PUDDLE_RETURN_IF_ERROR(tx.InsertSystem(system));
      return Ok();
    });
  }

  // Lists every page of `filter`, `limit` items a page, and returns the ids in order.
  std::vector<std::string> ListAll(const SystemFilter& filter, int limit) {
    std::vector<std::string> ids;
    PageRequest page;
    page.limit = limit;
    for (int pages = 0; pages < 50; ++pages) {
      auto listed =
          store_->ReadValue<Page<System>>([&](Tx& tx) { return tx.ListSystems(filter, page); });
      EXPECT_TRUE(listed) << listed.error().message;
      if (!listed) break;
      EXPECT_LE(listed->items.size(), static_cast<size_t>(limit));
      for (const auto& system : listed->items) ids.push_back(system.id);
      if (listed->next_cursor.empty()) break;
      page.cursor = listed->next_cursor;
    }
    return ids;
  }
};

using StoreEventsTest = StoreSystemsTest;
using StoreCostTest = StoreSystemsTest;

TEST_P(StoreSystemsTest, SystemRoundTrip) {
  System system = MakeSystem("s01", "user-a", "lab", SystemStatus::kRunning, 1);
  system.provider_state = R"({"pid":42})";
  system.address = "127.0.0.1:8888";
  system.sealed_token = "sealed";
  system.last_activity_at = TestStart() + minutes(2);
  system.idle_timeout_minutes = -1;
  ASSERT_OK(Insert({system}));

  auto read = store_->ReadValue<std::optional<System>>([](Tx& tx) { return tx.GetSystem("s01"); });
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  const System& got = **read;
  EXPECT_EQ(got.name, "lab");
  EXPECT_EQ(got.owner_id, "user-a");
  EXPECT_EQ(got.owner_username, "alice");
  EXPECT_EQ(got.status, SystemStatus::kRunning);
  EXPECT_EQ(got.vm_status, VmStatus::kRunning);
  EXPECT_EQ(got.product_status, ProductStatus::kReady);
  EXPECT_EQ(got.price_per_hour, 0.36);
  EXPECT_EQ(got.idle_timeout_minutes, -1);
  EXPECT_EQ(got.provider_state, R"({"pid":42})");
  EXPECT_EQ(got.address, "127.0.0.1:8888");
  EXPECT_EQ(got.sealed_token, "sealed");
  EXPECT_EQ(got.created_at, TestStart() + minutes(1));
  EXPECT_EQ(got.deleted_at, std::nullopt);
  EXPECT_EQ(got.last_activity_at, TestStart() + minutes(2));

  clock_.Advance(minutes(10));
  system.status = SystemStatus::kStopped;
  system.vm_status = VmStatus::kStopped;
  system.address.clear();
  system.last_activity_at.reset();
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.UpdateSystem(system); }));
  read = store_->ReadValue<std::optional<System>>([](Tx& tx) { return tx.GetSystem("s01"); });
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->status, SystemStatus::kStopped);
  EXPECT_EQ((*read)->address, "");
  EXPECT_EQ((*read)->last_activity_at, std::nullopt);
  EXPECT_EQ((*read)->updated_at, TestStart() + minutes(10));
}

TEST_P(StoreSystemsTest, ListSystemsEverySortOrderPages) {
  auto systems = ListFixture();
  ASSERT_OK(Insert(systems));

  for (const std::string sort : {"createdAt", "-createdAt", "name", "-name", "status", "-status"}) {
    for (int limit : {1, 2, 3, 50}) {
      SystemFilter filter;
      filter.sort = sort;
      EXPECT_EQ(ListAll(filter, limit), ExpectedOrder(systems, sort))
          << "sort " << sort << ", limit " << limit;
    }
  }

  SystemFilter by_default;
  EXPECT_EQ(ListAll(by_default, 2), ExpectedOrder(systems, "-createdAt"));
}

TEST_P(StoreSystemsTest, ListSystemsFilters) {
  ASSERT_OK(Insert(ListFixture()));

  SystemFilter owner;
  owner.owner_id = "user-a";
  owner.sort = "createdAt";
  EXPECT_THAT(ListAll(owner, 1), ElementsAre("s01", "s02", "s06"));

  SystemFilter deleted;
  deleted.status = SystemStatus::kDeleted;
  EXPECT_THAT(ListAll(deleted, 10), ElementsAre("s05"));

  SystemFilter running;
  running.status = SystemStatus::kRunning;
  running.sort = "name";
  EXPECT_THAT(ListAll(running, 10), ElementsAre("s03", "s01"));

  SystemFilter product;
  product.product = "h2o";
  EXPECT_THAT(ListAll(product, 10), ElementsAre("s06", "s03"));

  SystemFilter type;
  type.system_type = "large";
  EXPECT_THAT(ListAll(type, 1), ElementsAre("s06", "s02"));

  SystemFilter combined;
  combined.owner_id = "user-b";
  combined.product = "jupyter";
  combined.sort = "-name";
  EXPECT_THAT(ListAll(combined, 1), ElementsAre("s04", "s07"));

  PageRequest page;
  page.cursor = "bm90IG9uZSBvZiBvdXJz";  // base64 of text with no separator
  auto foreign =
      store_->ReadValue<Page<System>>([&](Tx& tx) { return tx.ListSystems(SystemFilter{}, page); });
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, ErrorCode::kValidationFailed);
}

TEST_P(StoreSystemsTest, ListAndCountByStatus) {
  ASSERT_OK(Insert(ListFixture()));

  auto listed = store_->ReadValue<std::vector<System>>([](Tx& tx) {
    return tx.ListSystemsByStatus({SystemStatus::kRunning, SystemStatus::kStopped});
  });
  ASSERT_OK(listed);
  std::vector<std::string> ids;
  for (const auto& system : *listed) ids.push_back(system.id);
  EXPECT_THAT(ids, ElementsAre("s01", "s02", "s03", "s07"));

  auto none =
      store_->ReadValue<std::vector<System>>([](Tx& tx) { return tx.ListSystemsByStatus({}); });
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());

  auto counts = store_->ReadValue<std::vector<std::pair<SystemStatus, int64_t>>>(
      [](Tx& tx) { return tx.CountSystemsByStatus(); });
  ASSERT_OK(counts);
  std::map<SystemStatus, int64_t> by_status(counts->begin(), counts->end());
  EXPECT_EQ(by_status.size(), 4u);
  EXPECT_EQ(by_status[SystemStatus::kRunning], 2);
  EXPECT_EQ(by_status[SystemStatus::kStopped], 2);
  EXPECT_EQ(by_status[SystemStatus::kFailed], 1);
  EXPECT_EQ(by_status[SystemStatus::kQueued], 1);
  EXPECT_EQ(by_status.count(SystemStatus::kDeleted), 0u);
}

TEST_P(StoreSystemsTest, DeletedSystemFreesItsName) {
  System first = MakeSystem("s01", "user-a", "lab", SystemStatus::kRunning, 1);
  ASSERT_OK(Insert({first}));

  auto taken = Insert({MakeSystem("s02", "user-a", "lab", SystemStatus::kQueued, 2)});
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, ErrorCode::kNameTaken);
  EXPECT_EQ(taken.error().field, "name");

  // The name is unique per owner only.
  ASSERT_OK(Insert({MakeSystem("s03", "user-b", "lab", SystemStatus::kQueued, 2)}));

  first.status = SystemStatus::kDeleted;
  first.deleted_at = TestStart() + minutes(3);
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.UpdateSystem(first); }));
  System second = MakeSystem("s02", "user-a", "lab", SystemStatus::kQueued, 4);
  ASSERT_OK(Insert({second}));

  // Several deleted systems may share a name.
  second.status = SystemStatus::kDeleted;
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.UpdateSystem(second); }));
  ASSERT_OK(Insert({MakeSystem("s04", "user-a", "lab", SystemStatus::kQueued, 5)}));

  auto read = store_->ReadValue<std::optional<System>>([](Tx& tx) { return tx.GetSystem("s01"); });
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->deleted_at, TestStart() + minutes(3));
}

TEST_P(StoreSystemsTest, OperationsRoundTripAndPage) {
  ASSERT_OK(Insert({MakeSystem("s01", "user-a", "lab", SystemStatus::kRunning, 1)}));
  auto operation = [](const std::string& id, std::optional<std::string> requested_by,
                      int created_minute) {
    Operation op;
    op.id = id;
    op.system_id = "s01";
    op.action = OperationAction::kStop;
    op.reason = requested_by ? OperationReason::kUser : OperationReason::kIdle;
    op.requested_by = requested_by;
    op.created_at = TestStart() + minutes(created_minute);
    op.updated_at = op.created_at;
    return op;
  };
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertOperation(operation("op-1", "user-a", 1)));
    PUDDLE_RETURN_IF_ERROR(tx.InsertOperation(operation("op-2", std::nullopt, 2)));
    return tx.InsertOperation(operation("op-3", "user-b", 2));
  }));

  clock_.Advance(minutes(5));
  ASSERT_OK(store_->Write([](Tx& tx) {
    return tx.UpdateOperation("op-2", OperationState::kFailed, "vm did not stop");
  }));

  auto got =
      store_->ReadValue<std::optional<Operation>>([](Tx& tx) { return tx.GetOperation("op-2"); });
  ASSERT_OK(got);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->state, OperationState::kFailed);
  EXPECT_EQ((*got)->error, "vm did not stop");
  EXPECT_EQ((*got)->requested_by, std::nullopt);
  EXPECT_EQ((*got)->requested_by_username, "");
  EXPECT_EQ((*got)->reason, OperationReason::kIdle);
  EXPECT_EQ((*got)->updated_at, TestStart() + minutes(5));

  std::vector<std::string> ids;
  std::vector<std::string> usernames;
  PageRequest page;
  page.limit = 2;
  for (int pages = 0; pages < 5; ++pages) {
    auto listed =
        store_->ReadValue<Page<Operation>>([&](Tx& tx) { return tx.ListOperations("s01", page); });
    ASSERT_OK(listed);
    for (const auto& op : listed->items) {
      ids.push_back(op.id);
      usernames.push_back(op.requested_by_username);
    }
    if (listed->next_cursor.empty()) break;
    page.cursor = listed->next_cursor;
  }
  EXPECT_THAT(ids, ElementsAre("op-3", "op-2", "op-1"));
  EXPECT_THAT(usernames, ElementsAre("bob", "", "alice"));
}

TEST_P(StoreEventsTest, SequenceAscendsAndAfterCursor) {
  ASSERT_OK(Insert({MakeSystem("s01", "user-a", "one", SystemStatus::kRunning, 1),
                    MakeSystem("s02", "user-a", "two", SystemStatus::kRunning, 1)}));

  std::vector<Event> inserted;
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    for (int i = 0; i < 6; ++i) {
      std::string system_id = i % 2 == 0 ? "s01" : "s02";
      std::optional<std::string> operation_id;
      if (i == 2) operation_id = "op-1";
      EventLevel level = i == 4 ? EventLevel::kError : EventLevel::kInfo;
      PUDDLE_ASSIGN_OR_RETURN(
          auto event, tx.InsertEvent(system_id, operation_id, level, "step " + std::to_string(i)));
      inserted.push_back(event);
      clock_.Advance(std::chrono::seconds(1));
    }
    return Ok();
  }));
  for (size_t i = 1; i < inserted.size(); ++i) {
    EXPECT_GT(inserted[i].sequence, inserted[i - 1].sequence) << "event " << i;
  }

  auto all =
      store_->ReadValue<std::vector<Event>>([](Tx& tx) { return tx.ListEvents("s01", 0, 100); });
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].message, "step 0");
  EXPECT_EQ((*all)[0].operation_id, std::nullopt);
  EXPECT_EQ((*all)[0].time, TestStart());
  EXPECT_EQ((*all)[1].message, "step 2");
  EXPECT_EQ((*all)[1].operation_id, "op-1");
  EXPECT_EQ((*all)[2].message, "step 4");
  EXPECT_EQ((*all)[2].level, EventLevel::kError);
  EXPECT_EQ((*all)[2].sequence, inserted[4].sequence);
  EXPECT_EQ((*all)[2].id, inserted[4].id);

  int64_t after = (*all)[0].sequence;
  auto rest = store_->ReadValue<std::vector<Event>>(
      [&](Tx& tx) { return tx.ListEvents("s01", after, 100); });
  ASSERT_OK(rest);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0].message, "step 2");
  EXPECT_EQ((*rest)[1].message, "step 4");

  auto limited =
      store_->ReadValue<std::vector<Event>>([&](Tx& tx) { return tx.ListEvents("s02", 0, 1); });
  ASSERT_OK(limited);
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].message, "step 1");

  auto none = store_->ReadValue<std::vector<Event>>(
      [&](Tx& tx) { return tx.ListEvents("s01", inserted.back().sequence, 100); });
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreCostTest, SessionsOpenOnceAndNeverEndBeforeStart) {
  System system = MakeSystem("s01", "user-a", "lab", SystemStatus::kRunning, 0);
  ASSERT_OK(Insert({system}));

  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.OpenCostSession(system); }));
  clock_.Advance(minutes(1));
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.OpenCostSession(system); }));
  // An end before the start (a clock that went back) closes the session at its start.
  ASSERT_OK(
      store_->Write([&](Tx& tx) { return tx.CloseCostSession("s01", TestStart() - minutes(5)); }));
  // Closing with no open session changes nothing.
  ASSERT_OK(store_->Write(
      [&](Tx& tx) { return tx.CloseCostSession("s01", TestStart() + minutes(100)); }));

  clock_.Set(TestStart() + minutes(10));
  system.price_per_hour = 0.72;
  ASSERT_OK(store_->Write([&](Tx& tx) { return tx.OpenCostSession(system); }));
  ASSERT_OK(
      store_->Write([&](Tx& tx) { return tx.CloseCostSession("s01", TestStart() + minutes(70)); }));

  auto sessions = store_->ReadValue<std::vector<CostSession>>(
      [](Tx& tx) { return tx.ListCostSessions("s01"); });
  ASSERT_OK(sessions);
  ASSERT_EQ(sessions->size(), 2u);
  const CostSession& first = (*sessions)[0];
  EXPECT_EQ(first.start, TestStart());
  EXPECT_EQ(first.end, TestStart());
  EXPECT_EQ(first.price_per_hour, 0.36);
  EXPECT_EQ(first.user_id, "user-a");
  EXPECT_EQ(first.product, "jupyter");
  const CostSession& second = (*sessions)[1];
  EXPECT_GT(second.id, first.id);
  EXPECT_EQ(second.start, TestStart() + minutes(10));
  EXPECT_EQ(second.end, TestStart() + minutes(70));
  EXPECT_EQ(second.price_per_hour, 0.72);

  auto other = store_->ReadValue<std::vector<CostSession>>(
      [](Tx& tx) { return tx.ListCostSessions("s02"); });
  ASSERT_OK(other);
  EXPECT_TRUE(other->empty());
}

INSTANTIATE_TEST_SUITE_P(Dialects, StoreSystemsTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);
INSTANTIATE_TEST_SUITE_P(Dialects, StoreEventsTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);
INSTANTIATE_TEST_SUITE_P(Dialects, StoreCostTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

}  // namespace
}  // namespace puddle::testing
