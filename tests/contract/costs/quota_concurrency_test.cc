// Twenty threads create or start systems of one user at the same moment
// against runningSystems = 1: the per-user lock lets exactly one through and
// refuses the rest with quota_exceeded, on SQLite and PostgreSQL. Also the
// cost queries (store_costs.cc) on both dialects.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "contract_fixture.h"
#include "providers/fake/fake_provider.h"
#include "queue/embedded/embedded_dispatcher.h"
#include "services/systems/system_service.h"

namespace puddle::testing {
namespace {

constexpr int kThreads = 20;

class QuotaConcurrencyTest : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
      User user;
      user.id = "alice-id";
      user.username = "alice";
      user.quota.running_systems = 1;
      user.created_at = tx.Now();
      PUDDLE_RETURN_IF_ERROR(tx.InsertUser(user).map([](const User&) {}));
      Product product;
      product.id = "jupyter";
      product.label = "Jupyter";
      product.created_at = tx.Now();
      PUDDLE_RETURN_IF_ERROR(tx.InsertProduct(product));
      ProductVersion version;
      version.version = "6.4";
      version.enabled = true;
      version.created_at = tx.Now();
      PUDDLE_RETURN_IF_ERROR(tx.InsertProductVersion("jupyter", version));
      Image image;
      image.id = "jupyter-fake";
      image.product = "jupyter";
      image.version = "6.4";
      image.provider = "fake";
      image.launch.command = {"jupyter-notebook"};
      image.created_at = tx.Now();
      PUDDLE_RETURN_IF_ERROR(tx.InsertImage(image));
      SystemType type;
      type.id = "cpu-small";
      type.label = "Small";
      type.price_per_hour = 0.36;
      type.created_at = tx.Now();
      return tx.InsertSystemType(type);
    }));
    providers_ = {{"fake", &fake_}};
    systems_ = std::make_unique<SystemService>(*store_, dispatcher_, providers_, config_,
                                               "contract-token-secret");
    alice_.user_id = "alice-id";
    alice_.username = "alice";
    if (IsPostgres()) OpenAllPooledConnections();
  }

  // Opens the PostgreSQL pool's connections (8 in the fixture) up front by
  // holding that many transactions at once, so the race below runs on
  // connections that exist instead of queueing behind their opening.
  void OpenAllPooledConnections() {
    constexpr int kPool = 8;
    std::atomic<int> inside{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kPool; ++i) {
      threads.emplace_back([&] {
        auto held = store_->Read([&](Tx&) -> Status {
          ++inside;
          auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
          while (inside.load() < kPool && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
          }
          return Ok();
        });
        EXPECT_TRUE(held) << held.error().message;
      });
    }
    for (auto& thread : threads) thread.join();
  }

  // Runs `attempt(i)` on kThreads threads released together; returns the
  // error codes, with nullopt for successes.
  std::vector<std::optional<ErrorCode>> RaceOnThreads(
      const std::function<Status(int)>& attempt) {
    std::vector<std::optional<ErrorCode>> outcomes(kThreads);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        ++ready;
        while (!go.load()) std::this_thread::yield();
        Status result = attempt(i);
        if (!result) outcomes[i] = result.error().code;
      });
    }
    while (ready.load() < kThreads) std::this_thread::yield();
    go = true;
    for (auto& thread : threads) thread.join();
    return outcomes;
  }

  static void ExpectOneWinner(const std::vector<std::optional<ErrorCode>>& outcomes) {
    int succeeded = 0, refused = 0;
    for (const auto& outcome : outcomes) {
      if (!outcome) {
        ++succeeded;
      } else {
        EXPECT_EQ(*outcome, ErrorCode::kQuotaExceeded) << ErrorCodeName(*outcome);
        if (*outcome == ErrorCode::kQuotaExceeded) ++refused;
      }
    }
    EXPECT_EQ(succeeded, 1);
    EXPECT_EQ(refused, kThreads - 1);
  }

  int64_t RunningCount() {
    auto counts = store_->ReadValue<UserSystemCounts>(
        [](Tx& tx) { return tx.CountSystemsOfUser("alice-id"); });
    EXPECT_TRUE(counts) << counts.error().message;
    return counts ? counts->running : -1;
  }

  FakeProvider fake_{[] {
    FakeProviderOptions options;
    options.fast = true;
    return options;
  }()};
  EmbeddedDispatcher dispatcher_;
  Config config_;
  ProviderMap providers_;
  std::unique_ptr<SystemService> systems_;
  Actor alice_;
};

TEST_P(QuotaConcurrencyTest, TwentyConcurrentCreatesLetOneThrough) {
  auto outcomes = RaceOnThreads([&](int i) -> Status {
    CreateSystemRequest request;
    request.name = "lab-" + std::to_string(i);
    request.product = "jupyter";
    request.version = "6.4";
    request.system_type = "cpu-small";
    return systems_->Create(alice_, request).map([](const SystemView&) {});
  });
  ExpectOneWinner(outcomes);
  EXPECT_EQ(RunningCount(), 1);
}

TEST_P(QuotaConcurrencyTest, TwentyConcurrentStartsLetOneThrough) {
  std::vector<std::string> ids;
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    for (int i = 0; i < kThreads; ++i) {
      System system;
      system.id = "stopped-" + std::to_string(i);
      system.name = system.id;
      system.owner_id = "alice-id";
      system.product = "jupyter";
      system.version = "6.4";
      system.system_type = "cpu-small";
      system.image_id = "jupyter-fake";
      system.status = SystemStatus::kStopped;
      system.provider = "fake";
      system.price_per_hour = 0.36;
      system.created_at = system.updated_at = tx.Now();
      PUDDLE_RETURN_IF_ERROR(tx.InsertSystem(system));
      ids.push_back(system.id);
    }
    return Ok();
  }));
  ASSERT_EQ(RunningCount(), 0);

  auto outcomes = RaceOnThreads([&](int i) -> Status {
    return systems_->Request(alice_, ids[i], OperationAction::kStart)
        .map([](const SystemView&) {});
  });
  ExpectOneWinner(outcomes);
  EXPECT_EQ(RunningCount(), 1);
}

// The cost queries on both dialects: sessions in a window with their
// owner's username, counts per user, users with a budget, budget warnings.
TEST_P(QuotaConcurrencyTest, CostQueriesAgreeOnBothDialects) {
  TimePoint start = clock_.Now();
  auto session_of = [&](const std::string& system_id) {
    System system;
    system.id = system_id;
    system.owner_id = "alice-id";
    system.product = "jupyter";
    system.system_type = "cpu-small";
    system.price_per_hour = 0.36;
    return system;
  };
  // "before" ends as the window opens; "inside" is closed; "open" is still running.
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.OpenCostSession(session_of("before")));
    return tx.CloseCostSession("before", start + std::chrono::hours(1));
  }));
  clock_.Advance(std::chrono::hours(2));
  ASSERT_OK(store_->Write([&](Tx& tx) -> Status {
    PUDDLE_RETURN_IF_ERROR(tx.OpenCostSession(session_of("inside")));
    PUDDLE_RETURN_IF_ERROR(tx.CloseCostSession("inside", tx.Now() + std::chrono::minutes(5)));
    return tx.OpenCostSession(session_of("open"));
  }));

  auto sessions = store_->ReadValue<std::vector<UserCostSession>>([&](Tx& tx) {
    return tx.ListCostSessionsBetween(start + std::chrono::hours(1),
                                      start + std::chrono::hours(3), std::string("alice-id"));
  });
  ASSERT_OK(sessions);
  ASSERT_EQ(sessions->size(), 2u);
  EXPECT_EQ((*sessions)[0].session.system_id, "inside");
  EXPECT_EQ((*sessions)[0].username, "alice");
  EXPECT_EQ((*sessions)[1].session.system_id, "open");
  EXPECT_FALSE((*sessions)[1].session.end);
  auto everyone = store_->ReadValue<std::vector<UserCostSession>>([&](Tx& tx) {
    return tx.ListCostSessionsBetween(start, start + std::chrono::hours(3), std::nullopt);
  });
  ASSERT_OK(everyone);
  EXPECT_EQ(everyone->size(), 3u);

  auto budgets = store_->ReadValue<std::vector<User>>([](Tx& tx) { return tx.ListUsersWithBudget(); });
  ASSERT_OK(budgets);
  EXPECT_TRUE(budgets->empty());

  auto first = store_->WriteValue<bool>([](Tx& tx) -> Result<bool> {
    PUDDLE_ASSIGN_OR_RETURN(auto user, tx.GetUserForUpdate("alice-id"));
    if (!user) return InternalError("alice is missing");
    user->quota.monthly_budget = 10;
    PUDDLE_RETURN_IF_ERROR(tx.UpdateUser(*user));
    return tx.RecordBudgetWarning("alice-id", "2026-03");
  });
  ASSERT_OK(first);
  EXPECT_TRUE(*first);
  auto again = store_->WriteValue<bool>(
      [](Tx& tx) { return tx.RecordBudgetWarning("alice-id", "2026-03"); });
  ASSERT_OK(again);
  EXPECT_FALSE(*again);
  auto next_month = store_->WriteValue<bool>(
      [](Tx& tx) { return tx.RecordBudgetWarning("alice-id", "2026-04"); });
  ASSERT_OK(next_month);
  EXPECT_TRUE(*next_month);
  budgets = store_->ReadValue<std::vector<User>>([](Tx& tx) { return tx.ListUsersWithBudget(); });
  ASSERT_OK(budgets);
  ASSERT_EQ(budgets->size(), 1u);
  EXPECT_EQ((*budgets)[0].quota.monthly_budget, 10);
}

INSTANTIATE_TEST_SUITE_P(Dialects, QuotaConcurrencyTest, ::testing::Values("sqlite", "postgres"),
                         DialectName);

}  // namespace
}  // namespace puddle::testing
