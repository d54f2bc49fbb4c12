// SystemService over a real SQLite store: validation, visibility, the
// lifecycle rules as the service applies them, and list pagination.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core_fixture.h"

namespace puddle::testing {
namespace {

class SystemServiceTest : public CoreTest {
 protected:
  CreateSystemRequest Request(const std::string& name) {
    CreateSystemRequest request;
    request.name = name;
    request.product = kProduct;
    request.version = kVersion;
    request.system_type = kSystemType;
    return request;
  }

  void ExpectInvalid(const CreateSystemRequest& request, const std::string& field) {
    SCOPED_TRACE("name \"" + request.name + "\", product \"" + request.product +
                 "\", version \"" + request.version + "\", systemType \"" + request.system_type +
                 "\"");
    auto created = systems_->Create(alice_, request);
    ASSERT_FALSE(created) << "created " << created->system.id;
    EXPECT_EQ(created.error().code, ErrorCode::kValidationFailed) << created.error().message;
    EXPECT_EQ(created.error().field, field) << created.error().message;
  }
};

TEST_F(SystemServiceTest, CreateQueuesSystemWithOperationAndJob) {
  auto created = systems_->Create(alice_, Request("lab"));
  ASSERT_TRUE(created) << created.error().message;
  const System& system = created->system;

  EXPECT_EQ(system.status, SystemStatus::kQueued);
  EXPECT_EQ(system.owner_id, alice_.user_id);
  EXPECT_EQ(system.provider, "fake");
  EXPECT_EQ(system.image_id, kImage);
  EXPECT_DOUBLE_EQ(system.price_per_hour, kPricePerHour);
  EXPECT_EQ(system.idle_timeout_minutes, config_.idle_timeout_options.front().minutes);

  auto operations = ListOperations(system.id);
  ASSERT_EQ(operations.size(), 1u);
  EXPECT_EQ(operations[0].action, OperationAction::kCreate);
  EXPECT_EQ(operations[0].reason, OperationReason::kUser);
  EXPECT_EQ(operations[0].requested_by, alice_.user_id);
  EXPECT_EQ(operations[0].state, OperationState::kQueued);

  auto jobs = ListActiveJobs(system.id);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, "system.create");
  EXPECT_EQ(jobs[0].operation_id, operations[0].id);
  EXPECT_EQ(EventMessages(system.id), std::vector<std::string>{"Queued by alice"});
  // Accepting a request makes no provider call.
  EXPECT_EQ(fake_->CallCount(FakeCall::kCreate), 0);
}

TEST_F(SystemServiceTest, CreateValidatesName) {
  std::string longest(63, 'a');
  for (std::string name : {"a", "7", "lab-2", "-lab", longest.c_str()}) {
    auto created = systems_->Create(alice_, Request(name));
    EXPECT_TRUE(created) << "name \"" << name << "\": " << created.error().message;
  }
  std::string too_long(64, 'a');
  for (std::string name :
       {"", too_long.c_str(), "Lab", "lab_2", "lab-", "my lab", "lab.x", "l\xc3\xa4" "b", "lab\n"}) {
    ExpectInvalid(Request(name), "name");
  }
}

TEST_F(SystemServiceTest, CreateValidatesCatalogFields) {
  auto request = Request("lab");
  request.product = "rstudio";
  ExpectInvalid(request, "product");

  request = Request("lab");
  request.version = "9.9";
  ExpectInvalid(request, "version");
  request.version = kDisabledVersion;
  ExpectInvalid(request, "version");
  request.version = kLocalOnlyVersion;
  ExpectInvalid(request, "version");

  request = Request("lab");
  request.system_type = "gpu-huge";
  ExpectInvalid(request, "systemType");
  request.system_type = kDisabledSystemType;
  ExpectInvalid(request, "systemType");
}

TEST_F(SystemServiceTest, CreateChecksIdleTimeoutOption) {
  auto request = Request("never");
  request.idle_timeout_minutes = -1;
  auto created = systems_->Create(alice_, request);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->system.idle_timeout_minutes, -1);

  request = Request("hourly");
  request.idle_timeout_minutes = 60;
  created = systems_->Create(alice_, request);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->system.idle_timeout_minutes, 60);

  request = Request("odd");
  for (int64_t minutes : {45, 0, -2}) {
    request.idle_timeout_minutes = minutes;
    SCOPED_TRACE(minutes);
    ExpectInvalid(request, "idleTimeoutMinutes");
  }
}

TEST_F(SystemServiceTest, NameTakenPerOwnerUntilDeleted) {
  System first = MustCreate(alice_, "lab");

  auto again = systems_->Create(alice_, Request("lab"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNameTaken);
  EXPECT_EQ(again.error().field, "name");

  auto other_owner = systems_->Create(bob_, Request("lab"));
  EXPECT_TRUE(other_owner) << other_owner.error().message;

  // While it is being deleted the name stays taken.
  MustRequest(alice_, first.id, OperationAction::kDelete);
  EXPECT_EQ(GetSystem(first.id).status, SystemStatus::kDeleting);
  again = systems_->Create(alice_, Request("lab"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNameTaken);

  RunJobs();
  ASSERT_EQ(GetSystem(first.id).status, SystemStatus::kDeleted);
  again = systems_->Create(alice_, Request("lab"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(again->system.id, first.id);
}

TEST_F(SystemServiceTest, OtherUsersSystemIsNotFound) {
  System system = MustCreate(alice_, "lab");

  auto got = systems_->Get(bob_, system.id);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
  for (auto action : {OperationAction::kStop, OperationAction::kDelete, OperationAction::kStart,
                      OperationAction::kKeepAlive, OperationAction::kFail}) {
    SCOPED_TRACE(std::string(OperationActionName(action)));
    auto requested = systems_->Request(bob_, system.id, action);
    ASSERT_FALSE(requested);
    EXPECT_EQ(requested.error().code, ErrorCode::kNotFound);
  }
  auto events = systems_->Events(bob_, system.id, 0, 50);
  ASSERT_FALSE(events);
  EXPECT_EQ(events.error().code, ErrorCode::kNotFound);
  auto operations = systems_->Operations(bob_, system.id, PageRequest());
  ASSERT_FALSE(operations);
  EXPECT_EQ(operations.error().code, ErrorCode::kNotFound);
  auto sessions = systems_->Sessions(bob_, system.id);
  ASSERT_FALSE(sessions);
  EXPECT_EQ(sessions.error().code, ErrorCode::kNotFound);

  // The rejected requests changed nothing.
  EXPECT_EQ(ListOperations(system.id).size(), 1u);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kQueued);

  auto unknown = systems_->Get(alice_, "no-such-system");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(SystemServiceTest, AdminSeesAllSystems) {
  System alices = MustCreate(alice_, "lab");
  System bobs = MustCreate(bob_, "lab");

  auto got = systems_->Get(admin_, alices.id);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->system.owner_username, "alice");

  auto listed = systems_->List(admin_, SystemFilter(), PageRequest());
  ASSERT_TRUE(listed) << listed.error().message;
  std::set<std::string> ids;
  for (const auto& view : listed->items) ids.insert(view.system.id);
  EXPECT_EQ(ids, (std::set<std::string>{alices.id, bobs.id}));

  SystemFilter only_bob;
  only_bob.owner_id = bob_.user_id;
  listed = systems_->List(admin_, only_bob, PageRequest());
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].system.id, bobs.id);

  // A user lists only their own, and may not ask for another owner.
  listed = systems_->List(alice_, SystemFilter(), PageRequest());
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].system.id, alices.id);
  listed = systems_->List(alice_, only_bob, PageRequest());
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, ErrorCode::kForbidden);
  EXPECT_EQ(listed.error().field, "query.owner");

  // An admin acting on another user's system is recorded with reason admin.
  clock_.Advance(std::chrono::seconds(1));
  MustRequest(admin_, bobs.id, OperationAction::kDelete);
  auto operations = ListOperations(bobs.id);
  ASSERT_EQ(operations.size(), 2u);
  EXPECT_EQ(operations[0].action, OperationAction::kDelete);
  EXPECT_EQ(operations[0].reason, OperationReason::kAdmin);
  EXPECT_EQ(operations[0].requested_by, admin_.user_id);
}

// Regression: an admin was treated as a mere owner on their own systems, so
// the admin-only requests (fail, restart-product) were forbidden there.
TEST_F(SystemServiceTest, AdminMayUseAdminActionsOnOwnSystem) {
  System system = MustCreateRunning(admin_, "own");

  clock_.Advance(std::chrono::seconds(1));
  System restarting = MustRequest(admin_, system.id, OperationAction::kRestartProduct);
  EXPECT_EQ(restarting.status, SystemStatus::kStarting);
  RunJobs();
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);

  clock_.Advance(std::chrono::seconds(1));
  System failed = MustRequest(admin_, system.id, OperationAction::kFail);
  EXPECT_EQ(failed.status, SystemStatus::kFailed);
  // Acting on their own system, the admin is the owner: reason user.
  EXPECT_EQ(ListOperations(system.id).front().reason, OperationReason::kUser);

  // A user still may not.
  System alices = MustCreateRunning(alice_, "lab");
  for (auto action : {OperationAction::kRestartProduct, OperationAction::kFail}) {
    auto refused = systems_->Request(alice_, alices.id, action);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kForbidden);
  }
}

TEST_F(SystemServiceTest, RepeatedStopWhileStoppingCreatesNothing) {
  System system = MustCreateRunning(alice_, "lab");
  size_t before = ListOperations(system.id).size();

  System stopping = MustRequest(alice_, system.id, OperationAction::kStop);
  EXPECT_EQ(stopping.status, SystemStatus::kStopping);
  ASSERT_EQ(ListOperations(system.id).size(), before + 1);
  size_t events = ListEvents(system.id).size();

  System again = MustRequest(alice_, system.id, OperationAction::kStop);
  EXPECT_EQ(again.status, SystemStatus::kStopping);
  System by_admin = MustRequest(admin_, system.id, OperationAction::kStop);
  EXPECT_EQ(by_admin.status, SystemStatus::kStopping);

  EXPECT_EQ(ListOperations(system.id).size(), before + 1);
  EXPECT_EQ(ListEvents(system.id).size(), events);
  EXPECT_EQ(ListActiveJobs(system.id).size(), 1u);

  EXPECT_EQ(RunJobs(), 1);
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kStopped);
  EXPECT_EQ(fake_->CallCount(FakeCall::kStop), 1);

  // Once stopped, another stop is a conflict naming the status.
  auto stopped = systems_->Request(alice_, system.id, OperationAction::kStop);
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code, ErrorCode::kConflict);
  EXPECT_EQ(stopped.error().status, "stopped");
}

TEST_F(SystemServiceTest, RepeatedDeleteWhileDeletingCreatesNothing) {
  System system = MustCreate(alice_, "lab");
  MustRequest(alice_, system.id, OperationAction::kDelete);
  size_t operations = ListOperations(system.id).size();

  System again = MustRequest(alice_, system.id, OperationAction::kDelete);
  EXPECT_EQ(again.status, SystemStatus::kDeleting);
  EXPECT_EQ(ListOperations(system.id).size(), operations);
  EXPECT_EQ(ListActiveJobs(system.id).size(), 1u);
}

TEST_F(SystemServiceTest, FailMakesNoProviderCallAndClosesSession) {
  System system = MustCreateRunning(alice_, "lab");
  ASSERT_EQ(ListSessions(system.id).size(), 1u);
  ASSERT_FALSE(ListSessions(system.id)[0].end.has_value());

  // A stop waits in the queue when the admin fails the system.
  clock_.Advance(std::chrono::seconds(1));
  MustRequest(alice_, system.id, OperationAction::kStop);
  auto queued = ListActiveJobs(system.id);
  ASSERT_EQ(queued.size(), 1u);
  ASSERT_EQ(queued[0].kind, "system.stop");

  std::vector<int> calls_before;
  for (auto call : {FakeCall::kCreate, FakeCall::kStart, FakeCall::kStop, FakeCall::kReboot,
                    FakeCall::kDelete, FakeCall::kPoll, FakeCall::kCheckProduct}) {
    calls_before.push_back(fake_->CallCount(call));
  }
  clock_.Advance(std::chrono::seconds(30));
  System failed = MustRequest(admin_, system.id, OperationAction::kFail);
  EXPECT_EQ(failed.status, SystemStatus::kFailed);

  std::vector<int> calls_after;
  for (auto call : {FakeCall::kCreate, FakeCall::kStart, FakeCall::kStop, FakeCall::kReboot,
                    FakeCall::kDelete, FakeCall::kPoll, FakeCall::kCheckProduct}) {
    calls_after.push_back(fake_->CallCount(call));
  }
  EXPECT_EQ(calls_after, calls_before);

  auto sessions = ListSessions(system.id);
  ASSERT_EQ(sessions.size(), 1u);
  ASSERT_TRUE(sessions[0].end.has_value());
  EXPECT_EQ(*sessions[0].end, clock_.Now());

  Job cancelled = GetJob(queued[0].id);
  EXPECT_EQ(cancelled.state, JobState::kCancelled);
  EXPECT_TRUE(ListActiveJobs(system.id).empty());
  auto operations = ListOperations(system.id);
  ASSERT_GE(operations.size(), 2u);
  EXPECT_EQ(operations[0].action, OperationAction::kFail);
  EXPECT_EQ(operations[0].state, OperationState::kSucceeded);
  EXPECT_EQ(operations[1].action, OperationAction::kStop);
  EXPECT_EQ(operations[1].state, OperationState::kFailed);
  EXPECT_EQ(RunJobs(), 0);

  // The machine is left for a later start or delete.
  auto machine = fake_->FindMachine(system.id);
  ASSERT_TRUE(machine);
  EXPECT_TRUE(machine->running);
  auto events = ListEvents(system.id);
  EXPECT_EQ(events.back().level, EventLevel::kError);
}

TEST_F(SystemServiceTest, AutomaticFailNeedsNoUser) {
  System system = MustCreate(alice_, "lab");
  clock_.Advance(std::chrono::seconds(1));
  auto failed = systems_->RequestAutomatic(system.id, OperationAction::kFail,
                                           OperationReason::kReconcile, "Machine lost");
  ASSERT_TRUE(failed) << failed.error().message;
  EXPECT_EQ(GetSystem(system.id).status, SystemStatus::kFailed);
  auto operations = ListOperations(system.id);
  EXPECT_EQ(operations[0].reason, OperationReason::kReconcile);
  EXPECT_FALSE(operations[0].requested_by.has_value());
  // The queued create job was cancelled.
  EXPECT_TRUE(ListActiveJobs(system.id).empty());
  EXPECT_EQ(RunJobs(), 0);
  EXPECT_EQ(fake_->CallCount(FakeCall::kCreate), 0);

  auto again = systems_->RequestAutomatic(system.id, OperationAction::kFail,
                                          OperationReason::kReconcile, "Machine lost");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().status, "failed");
}

TEST_F(SystemServiceTest, KeepAliveOnlyFromRunning) {
  System system = MustCreate(alice_, "lab");
  auto early = systems_->Request(alice_, system.id, OperationAction::kKeepAlive);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, ErrorCode::kConflict);
  EXPECT_EQ(early.error().status, "queued");

  RunJobs();
  ASSERT_EQ(GetSystem(system.id).status, SystemStatus::kRunning);
  size_t operations = ListOperations(system.id).size();
  clock_.Advance(std::chrono::minutes(10));

  auto kept = systems_->Request(alice_, system.id, OperationAction::kKeepAlive, 30);
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ(kept->system.status, SystemStatus::kRunning);
  // The keep-alive is stored for the idle loop; it is not activity.
  auto record = store_->ReadValue<ActivityRecord>([&](Tx& tx) { return tx.GetActivity(system.id); });
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_EQ(record->keep_alive_at, clock_.Now());
  EXPECT_EQ(record->keep_alive_until, clock_.Now() + std::chrono::minutes(30));
  auto listed = ListOperations(system.id);
  ASSERT_EQ(listed.size(), operations + 1);
  EXPECT_EQ(listed[0].action, OperationAction::kKeepAlive);
  EXPECT_EQ(listed[0].state, OperationState::kSucceeded);
  EXPECT_TRUE(ListActiveJobs(system.id).empty());

  // Being instant, keep-alive is never under way: a repeat records another.
  kept = systems_->Request(admin_, system.id, OperationAction::kKeepAlive);
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ(ListOperations(system.id).size(), operations + 2);

  for (int64_t minutes : {int64_t{0}, config_.max_keep_alive_minutes + 1}) {
    auto invalid = systems_->Request(alice_, system.id, OperationAction::kKeepAlive, minutes);
    ASSERT_FALSE(invalid) << minutes;
    EXPECT_EQ(invalid.error().code, ErrorCode::kValidationFailed);
    EXPECT_EQ(invalid.error().field, "minutes");
  }

  MustRequest(alice_, system.id, OperationAction::kStop);
  RunJobs();
  auto stopped = systems_->Request(alice_, system.id, OperationAction::kKeepAlive);
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code, ErrorCode::kConflict);
  EXPECT_EQ(stopped.error().status, "stopped");
}

TEST_F(SystemServiceTest, DeletedSystemLeavesListsButStaysReadable) {
  System system = MustCreate(alice_, "lab");
  MustRequest(alice_, system.id, OperationAction::kDelete);
  RunJobs();

  auto got = systems_->Get(alice_, system.id);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->system.status, SystemStatus::kDeleted);
  auto listed = systems_->List(alice_, SystemFilter(), PageRequest());
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_TRUE(listed->items.empty());

  SystemFilter deleted;
  deleted.status = SystemStatus::kDeleted;
  listed = systems_->List(alice_, deleted, PageRequest());
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].system.id, system.id);
}

// Seven systems, some created in the same millisecond, two of them failed.
class SystemListTest : public SystemServiceTest {
 protected:
  void SetUp() override {
    SystemServiceTest::SetUp();
    const std::vector<std::string> names = {"delta", "alpha", "golf", "charlie",
                                            "echo",  "bravo", "foxtrot"};
    for (size_t i = 0; i < names.size(); ++i) {
      // Pairs share a creation time, so ties are broken by id.
      if (i % 2 == 0) clock_.Advance(std::chrono::seconds(1));
      systems_by_id_[MustCreate(alice_, names[i]).id] = names[i];
    }
    for (const auto& [id, name] : systems_by_id_) {
      if (name == "alpha" || name == "echo") MustRequest(admin_, id, OperationAction::kFail);
    }
    MustCreate(bob_, "not-alices");
  }

  // Follows cursors with `limit` and returns the ids in order.
  std::vector<std::string> ListAll(const std::string& sort, int limit) {
    SystemFilter filter;
    filter.sort = sort;
    PageRequest page;
    page.limit = limit;
    std::vector<std::string> ids;
    for (int pages = 0; pages < 100; ++pages) {
      auto listed = systems_->List(alice_, filter, page);
      EXPECT_TRUE(listed) << listed.error().message;
      if (!listed) break;
      EXPECT_LE(listed->items.size(), static_cast<size_t>(limit));
      for (const auto& view : listed->items) ids.push_back(view.system.id);
      if (listed->next_cursor.empty()) break;
      page.cursor = listed->next_cursor;
    }
    return ids;
  }

  // The order the contract requires: by the sort key, then by id, in the
  // same direction.
  std::vector<std::string> Expected(const std::string& sort) {
    std::vector<System> systems;
    for (const auto& [id, name] : systems_by_id_) systems.push_back(GetSystem(id));
    bool descending = sort[0] == '-';
    std::string key = descending ? sort.substr(1) : sort;
    auto key_of = [&](const System& system) -> std::string {
      if (key == "name") return system.name;
      if (key == "status") return std::string(SystemStatusName(system.status));
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%020lld",
                    static_cast<long long>(ToUnixMillis(system.created_at)));
      return buffer;
    };
    std::sort(systems.begin(), systems.end(), [&](const System& a, const System& b) {
      auto left = std::make_pair(key_of(a), a.id);
      auto right = std::make_pair(key_of(b), b.id);
      return descending ? right < left : left < right;
    });
    std::vector<std::string> ids;
    for (const auto& system : systems) ids.push_back(system.id);
    return ids;
  }

  std::map<std::string, std::string> systems_by_id_;
};

TEST_F(SystemListTest, LimitOneReturnsEverySystemOnce) {
  for (std::string sort : {"-createdAt", "createdAt", "name", "-name", "status", "-status"}) {
    SCOPED_TRACE("sort=" + sort);
    std::vector<std::string> paged = ListAll(sort, 1);
    std::set<std::string> unique(paged.begin(), paged.end());
    EXPECT_EQ(paged.size(), systems_by_id_.size());
    EXPECT_EQ(unique.size(), systems_by_id_.size());
    EXPECT_EQ(paged, Expected(sort));
    EXPECT_EQ(ListAll(sort, 3), paged);
    EXPECT_EQ(ListAll(sort, 500), paged);
  }
}

TEST_F(SystemListTest, SortByNameIsAlphabetical) {
  std::vector<std::string> names;
  for (const auto& id : ListAll("name", 2)) names.push_back(systems_by_id_[id]);
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "bravo", "charlie", "delta", "echo",
                                             "foxtrot", "golf"}));
}

TEST_F(SystemListTest, DefaultSortIsNewestFirst) {
  SystemFilter filter;
  auto listed = systems_->List(alice_, filter, PageRequest());
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->items.size(), systems_by_id_.size());
  for (size_t i = 1; i < listed->items.size(); ++i) {
    EXPECT_GE(listed->items[i - 1].system.created_at, listed->items[i].system.created_at);
  }
  EXPECT_TRUE(listed->next_cursor.empty());
}

TEST_F(SystemListTest, StatusFilterAndBadCursor) {
  SystemFilter failed;
  failed.status = SystemStatus::kFailed;
  auto listed = systems_->List(alice_, failed, PageRequest());
  ASSERT_TRUE(listed) << listed.error().message;
  std::set<std::string> names;
  for (const auto& view : listed->items) names.insert(view.system.name);
  EXPECT_EQ(names, (std::set<std::string>{"alpha", "echo"}));

  PageRequest page;
  page.cursor = "not-a-cursor";
  listed = systems_->List(alice_, SystemFilter(), page);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, ErrorCode::kValidationFailed);
  EXPECT_EQ(listed.error().field, "query.cursor");
}

}  // namespace
}  // namespace puddle::testing
