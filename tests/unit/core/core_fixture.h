// CoreTest: a migrated SQLite store in a temporary directory, a fake clock,
// a small catalog, three users, a FakeProvider and the real SystemService,
// SystemJobs and JobRunner wired the way the server wires them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "providers/fake/fake_provider.h"
#include "queue/embedded/embedded_dispatcher.h"
#include "services/actor.h"
#include "services/systems/system_service.h"
#include "storage/store.h"
#include "workers/job_runner.h"
#include "workers/jobs/system_jobs.h"
#include "workers/loops/reconcile_loop.h"

namespace puddle::testing {

// A directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// 2026-03-02T10:00:00Z, where every test's clock starts.
TimePoint TestStart();

class CoreTest : public ::testing::Test {
 protected:
  static constexpr const char* kProduct = "jupyter";
  static constexpr const char* kVersion = "6.4";
  static constexpr const char* kDisabledVersion = "6.3";
  // A version whose only image is on the local provider, which these tests do not enable.
  static constexpr const char* kLocalOnlyVersion = "7.0";
  static constexpr const char* kImage = "jupyter-6-4-fake";
  static constexpr const char* kSystemType = "cpu-small";
  static constexpr const char* kDisabledSystemType = "cpu-retired";
  // 0.36 per hour is 0.0001 per second, so costs in whole seconds are exact to read.
  static constexpr double kPricePerHour = 0.36;

  CoreTest();
  ~CoreTest() override;

  void SetUp() override;

  // Replaces the fake provider; systems, jobs and the reconcile loop use the new one.
  FakeProvider& UseFake(FakeProviderOptions options);
  // Default options for these tests: small delays, one starting health check.
  static FakeProviderOptions QuickFake();

  // Sets the start timeout of the one ready image.
  void SetStartTimeout(int seconds);

  // Creates a system through the service; fails the test on error.
  System MustCreate(const Actor& actor, const std::string& name);
  // Creates a system and runs its create job until it is running.
  System MustCreateRunning(const Actor& actor, const std::string& name);
  // Requests `action` through the service; fails the test on error.
  System MustRequest(const Actor& actor, const std::string& id, OperationAction action);

  // Runs queued jobs on this thread until none is runnable. Returns how many ran.
  int RunJobs();
  // Like RunJobs, but also moves the clock to the next retry time whenever
  // only retries are left, at most `max_advances` times.
  int RunJobsAdvancingClock(int max_advances = 10);

  // Direct reads of the store.
  System GetSystem(const std::string& id);
  std::vector<Operation> ListOperations(const std::string& system_id);
  std::vector<Event> ListEvents(const std::string& system_id);
  std::vector<std::string> EventMessages(const std::string& system_id);
  std::vector<CostSession> ListSessions(const std::string& system_id);
  std::vector<Job> ListActiveJobs(const std::string& system_id);
  Job GetJob(const std::string& id);

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  EmbeddedDispatcher dispatcher_;
  Config config_;
  ProviderMap providers_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<SystemService> systems_;
  std::unique_ptr<SystemJobs> jobs_;
  std::unique_ptr<JobRunner> runner_;
  std::unique_ptr<ReconcileLoop> reconcile_;

  Actor alice_;  // a user
  Actor bob_;    // another user
  Actor admin_;  // an admin who owns no system
};

}  // namespace puddle::testing
