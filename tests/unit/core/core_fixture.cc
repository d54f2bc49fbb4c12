#include "core_fixture.h"

#include <cstdlib>
#include <filesystem>

#include "common/crypto.h"
#include "storage/sqlite/sqlite_database.h"

namespace puddle::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "puddle-core-XXXXXX").string();
  char* created = mkdtemp(pattern.data());
  EXPECT_NE(created, nullptr) << "mkdtemp " << pattern << " failed";
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

TimePoint TestStart() { return *ParseTime("2026-03-02T10:00:00Z"); }

CoreTest::CoreTest() : clock_(TestStart()) {}

CoreTest::~CoreTest() {
  // The runner refers to the jobs, which refer to the service and the store.
  runner_.reset();
  reconcile_.reset();
  jobs_.reset();
  systems_.reset();
}

namespace {

User MakeUser(const std::string& id, const std::string& username, Role role, TimePoint now) {
  User user;
  user.id = id;
  user.username = username;
  user.role = role;
  user.created_at = now;
  return user;
}

Actor ActorOf(const User& user) {
  Actor actor;
  actor.user_id = user.id;
  actor.username = user.username;
  actor.role = user.role;
  return actor;
}

}  // namespace

void CoreTest::SetUp() {
  ASSERT_TRUE(InitCrypto());
  auto database = sql::SqliteDatabase::Open(dir_.path() + "/puddle.db");
  ASSERT_TRUE(database) << database.error().message;
  store_ = std::make_unique<Store>(std::move(*database), clock_);
  auto migrated = store_->Migrate();
  ASSERT_TRUE(migrated) << migrated.error().message;

  User alice = MakeUser("alice-id", "alice", Role::kUser, clock_.Now());
  User bob = MakeUser("bob-id", "bob", Role::kUser, clock_.Now());
  User admin = MakeUser("admin-id", "admin", Role::kAdmin, clock_.Now());
  auto seeded = store_->Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.InsertUser(alice));
    PUDDLE_RETURN_IF_ERROR(tx.InsertUser(bob));
    PUDDLE_RETURN_IF_ERROR(tx.InsertUser(admin));

    Product product;
    product.id = kProduct;
    product.label = "Jupyter Notebook";
    product.created_at = tx.Now();
    PUDDLE_RETURN_IF_ERROR(tx.InsertProduct(product));
    for (const char* version : {kVersion, kDisabledVersion, kLocalOnlyVersion}) {
      ProductVersion row;
      row.version = version;
      row.enabled = std::string(version) != kDisabledVersion;
      row.created_at = tx.Now();
      PUDDLE_RETURN_IF_ERROR(tx.InsertProductVersion(kProduct, row));
    }

    Image image;
    image.id = kImage;
    image.product = kProduct;
    image.version = kVersion;
    image.provider = "fake";
    image.launch.command = {"jupyter-notebook", "--port={port}"};
    image.created_at = tx.Now();
    PUDDLE_RETURN_IF_ERROR(tx.InsertImage(image));
    Image disabled_image = image;
    disabled_image.id = "jupyter-6-3-fake";
    disabled_image.version = kDisabledVersion;
    PUDDLE_RETURN_IF_ERROR(tx.InsertImage(disabled_image));
    Image local_image = image;
    local_image.id = "jupyter-7-0-local";
    local_image.version = kLocalOnlyVersion;
    local_image.provider = "local";
    PUDDLE_RETURN_IF_ERROR(tx.InsertImage(local_image));

    SystemType type;
    type.id = kSystemType;
    type.label = "Small CPU";
    type.price_per_hour = kPricePerHour;
    type.created_at = tx.Now();
    PUDDLE_RETURN_IF_ERROR(tx.InsertSystemType(type));
    SystemType retired = type;
    retired.id = kDisabledSystemType;
    retired.enabled = false;
    return tx.InsertSystemType(retired);
  });
  ASSERT_TRUE(seeded) << seeded.error().message;
  alice_ = ActorOf(alice);
  bob_ = ActorOf(bob);
  admin_ = ActorOf(admin);

  UseFake(QuickFake());
  systems_ = std::make_unique<SystemService>(*store_, dispatcher_, providers_, config_,
                                             "core-test-token-secret");
  SystemJobsOptions job_options;
  job_options.installation_id = "core-test";
  job_options.health_poll_interval = std::chrono::milliseconds(5);
  jobs_ = std::make_unique<SystemJobs>(*store_, providers_, *systems_, job_options);

  JobRunnerOptions runner_options;
  runner_options.workers = 1;
  runner_options.process_id = "core-test";
  runner_options.backoff_base = std::chrono::milliseconds(1000);
  runner_options.backoff_cap = std::chrono::milliseconds(8000);
  runner_ = std::make_unique<JobRunner>(*store_, dispatcher_, runner_options);
  jobs_->RegisterWith(*runner_);
  reconcile_ = std::make_unique<ReconcileLoop>(*store_, providers_, *systems_);
}

FakeProviderOptions CoreTest::QuickFake() {
  FakeProviderOptions options;
  options.call_delay = std::chrono::milliseconds(1);
  options.starting_checks = 1;
  return options;
}

FakeProvider& CoreTest::UseFake(FakeProviderOptions options) {
  // Entries of the map are read on every call, so a swap takes effect at once.
  auto replacement = std::make_unique<FakeProvider>(std::move(options));
  providers_["fake"] = replacement.get();
  fake_ = std::move(replacement);
  return *fake_;
}

void CoreTest::SetStartTimeout(int seconds) {
  auto updated = store_->Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(auto image, tx.GetImage(kImage));
    if (!image) return InternalError("image " + std::string(kImage) + " is missing");
    image->launch.start_timeout_seconds = seconds;
    return tx.UpdateImage(*image);
  });
  ASSERT_TRUE(updated) << updated.error().message;
}

System CoreTest::MustCreate(const Actor& actor, const std::string& name) {
  CreateSystemRequest request;
  request.name = name;
  request.product = kProduct;
  request.version = kVersion;
  request.system_type = kSystemType;
  auto created = systems_->Create(actor, request);
  if (!created) {
    ADD_FAILURE() << "create " << name << ": " << created.error().message;
    return System();
  }
  return created->system;
}

System CoreTest::MustCreateRunning(const Actor& actor, const std::string& name) {
  System system = MustCreate(actor, name);
  RunJobs();
  system = GetSystem(system.id);
  EXPECT_EQ(system.status, SystemStatus::kRunning) << "system " << name;
  return system;
}

System CoreTest::MustRequest(const Actor& actor, const std::string& id, OperationAction action) {
  auto requested = systems_->Request(actor, id, action);
  if (!requested) {
    ADD_FAILURE() << OperationActionName(action) << " " << id << ": "
                  << requested.error().message;
    return System();
  }
  return requested->system;
}

int CoreTest::RunJobs() {
  int ran = 0;
  while (runner_->RunOne("core-test/0")) ++ran;
  return ran;
}

int CoreTest::RunJobsAdvancingClock(int max_advances) {
  int ran = RunJobs();
  for (int i = 0; i < max_advances; ++i) {
    auto next = store_->ReadValue<std::optional<TimePoint>>(
        [](Tx& tx) { return tx.NextRunnableJobTime(); });
    if (!next || !*next) break;
    if (**next > clock_.Now()) clock_.Set(**next);
    ran += RunJobs();
  }
  return ran;
}

System CoreTest::GetSystem(const std::string& id) {
  auto found = store_->ReadValue<std::optional<System>>([&](Tx& tx) { return tx.GetSystem(id); });
  if (!found || !*found) {
    ADD_FAILURE() << "system " << id << " not found";
    return System();
  }
  return **found;
}

std::vector<Operation> CoreTest::ListOperations(const std::string& system_id) {
  PageRequest page;
  page.limit = 500;
  auto listed = store_->ReadValue<Page<Operation>>(
      [&](Tx& tx) { return tx.ListOperations(system_id, page); });
  EXPECT_TRUE(listed) << listed.error().message;
  return listed ? listed->items : std::vector<Operation>();
}

std::vector<Event> CoreTest::ListEvents(const std::string& system_id) {
  auto listed = store_->ReadValue<std::vector<Event>>(
      [&](Tx& tx) { return tx.ListEvents(system_id, 0, 500); });
  EXPECT_TRUE(listed) << listed.error().message;
  return listed ? *listed : std::vector<Event>();
}

std::vector<std::string> CoreTest::EventMessages(const std::string& system_id) {
  std::vector<std::string> messages;
  for (const auto& event : ListEvents(system_id)) messages.push_back(event.message);
  return messages;
}

std::vector<CostSession> CoreTest::ListSessions(const std::string& system_id) {
  auto listed = store_->ReadValue<std::vector<CostSession>>(
      [&](Tx& tx) { return tx.ListCostSessions(system_id); });
  EXPECT_TRUE(listed) << listed.error().message;
  return listed ? *listed : std::vector<CostSession>();
}

std::vector<Job> CoreTest::ListActiveJobs(const std::string& system_id) {
  auto listed = store_->ReadValue<std::vector<Job>>(
      [&](Tx& tx) { return tx.ListActiveJobs(system_id); });
  EXPECT_TRUE(listed) << listed.error().message;
  return listed ? *listed : std::vector<Job>();
}

Job CoreTest::GetJob(const std::string& id) {
  auto found = store_->ReadValue<std::optional<Job>>([&](Tx& tx) { return tx.GetJob(id); });
  if (!found || !*found) {
    ADD_FAILURE() << "job " << id << " not found";
    return Job();
  }
  return **found;
}

}  // namespace puddle::testing
