// FakeProvider: an in-memory Provider for tests and benchmarks.
//
// Machines live in a map keyed by system id and never touch the host: no
// process, no socket, no file. Each instance models at most one failure,
// chosen by FakeFailure, so a test names the failure it exercises. Outcomes
// depend only on the order of calls, never on timing: the product becomes
// ready after a fixed number of health checks, and failures follow per-system
// call counts.
//
// Provider state (JSON, no secret):
//   {"version":1, "machine":"<machine id>", "running":true|false, "port":N, "boot":N}
// "boot" is the simulated host's boot number when the machine started, so a
// Poll after SimulateHostRestart() reports GoneReason::kHostRestarted.
//
// Thread-safe. Sleeps (call_delay, slow_delay) happen outside the lock, so
// calls for different systems overlap as they would on a real provider.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/provider.h"

namespace puddle {

// The one failure a FakeProvider instance models.
enum class FakeFailure {
  kNone,
  // Every provider call sleeps FakeProviderOptions::slow_delay first.
  kSlow,
  // CheckProduct always returns kStarting.
  kNeverReady,
  // Create and Start fail (see FakeProviderOptions::start_failures).
  kFailsToStart,
  // Every second Poll of a system (the 2nd, 4th, ...) fails with kUnavailable.
  kFlakyPoll,
  // The product exits right after its first successful health check: later
  // Polls report GoneReason::kProcessExited with exit_description and
  // last_log_lines.
  kDiesAfterStart,
};

// Provider methods whose calls the fake counts.
enum class FakeCall {
  kCreate,
  kStart,
  kStop,
  kReboot,
  kDelete,
  kPoll,
  kCheckProduct,
  kReadLogs,
  kListOwned,
};

struct FakeProviderOptions {
  // Value of start_failures that makes every Create and Start fail for good.
  static constexpr int kAlwaysFail = -1;

  FakeFailure failure = FakeFailure::kNone;
  // Benchmarks: no sleep anywhere (call_delay and slow_delay are ignored),
  // and the product passes its first health check.
  bool fast = false;
  // Time Create, Start, Stop, Reboot and Delete take outside fast mode. Default 20 ms.
  std::chrono::milliseconds call_delay{20};
  // Health checks after each start that return kStarting before the product
  // is ready, outside fast mode. Default 1.
  int starting_checks = 1;
  // kSlow: time every provider call takes, instead of call_delay. Default 2 s.
  std::chrono::milliseconds slow_delay{2000};
  // kFailsToStart: the first N Create and Start calls of each system fail
  // with kUnavailable, and later ones succeed. kAlwaysFail (the default)
  // makes every call fail with kInternal.
  int start_failures = kAlwaysFail;
  // kDiesAfterStart: what Poll reports about the exit.
  std::string exit_description = "exit status 1";
  std::string last_log_lines = "Traceback (most recent call last):\nMemoryError";
  // Addresses reported for running machines are <listen_host>:<port>, with
  // ports handed out from port_base upwards. Nothing listens there.
  std::string listen_host = "127.0.0.1";
  int port_base = 39000;
  // Returned by HourlyPrice() for every system type when set.
  std::optional<double> hourly_price;
};

// A snapshot of one machine, for tests.
struct FakeMachine {
  std::string id;  // "m1", "m2", ... in order of creation
  std::string system_id;
  bool running = false;
  // kDiesAfterStart: the product has exited.
  bool exited = false;
  int port = 0;
  // Boot number of the simulated host when the machine last started.
  int boot = 0;
  // Health checks since the machine last started.
  int health_checks = 0;
  std::vector<std::string> log_lines;
};

class FakeProvider final : public Provider {
 public:
  explicit FakeProvider(FakeProviderOptions options = {});

  std::string_view Kind() const override { return "fake"; }
  // Accepts every system type.
  Status CheckSystemType(const SystemType& type) const override;
  // Adopts the system's machine when one exists (a retried job), else makes one.
  Result<std::string> Create(const LaunchRequest& request) override;
  // Fails with kInternal when the machine named by `state` no longer exists.
  Result<std::string> Start(const LaunchRequest& request, std::string_view state) override;
  // Succeeds when the machine is already stopped or gone.
  Result<std::string> Stop(std::string_view system_id, std::string_view state) override;
  Result<std::string> Reboot(const LaunchRequest& request, std::string_view state) override;
  // Succeeds when no machine exists.
  Status Delete(std::string_view system_id, std::string_view state) override;
  Result<Observation> Poll(std::string_view system_id, std::string_view state) override;
  ProductStatus CheckProduct(const LaunchRequest& request, std::string_view state) override;
  Result<std::string> ReadLogs(std::string_view system_id, std::string_view state,
                               int lines) override;
  Result<std::vector<OwnedResource>> ListOwned() override;
  std::optional<double> HourlyPrice(const SystemType& type) const override;
  // Returns the answer SetProductAnswer gave for (system, path) while the
  // machine runs; kUnavailable otherwise.
  Result<std::string> GetFromProduct(const LaunchRequest& request, std::string_view state,
                                     std::string_view path) override;
  // Returns the value SetCpuSeconds gave, or nullopt.
  Result<std::optional<double>> CpuSeconds(std::string_view system_id,
                                           std::string_view state) override;

  // Simulates a reboot of the host: every machine stops, and a Poll with a
  // state from before the reboot reports GoneReason::kHostRestarted, with
  // `booted_at` as the time the machines were last known running.
  void SimulateHostRestart(std::optional<TimePoint> booted_at = std::nullopt);

  // What the product of `system_id` answers to GET <basePath><path>.
  void SetProductAnswer(std::string_view system_id, std::string_view path, std::string body);
  // Makes GET `path` of the system's product fail again, as if the product did not respond.
  void ForgetProductAnswer(std::string_view system_id, std::string_view path);
  // The CPU time the system's processes have used, in seconds.
  void SetCpuSeconds(std::string_view system_id, double seconds);

  // Number of calls made to `call` since construction, failed ones included.
  int CallCount(FakeCall call) const;
  // Machines made by Create since construction (adopted ones not counted).
  int MachinesCreated() const;
  // Machines that exist now.
  size_t MachineCount() const;
  std::optional<FakeMachine> FindMachine(std::string_view system_id) const;

 private:
  // The fields of a provider state, parsed from the core's copy.
  struct State {
    std::string machine;
    bool running = false;
    int port = 0;
    int boot = 0;
  };

  static constexpr size_t kCallKinds = 9;

  // Counts the call, then sleeps as the options ask (outside the lock).
  void Enter(FakeCall call, bool does_work);
  Status CheckStartFailure(const std::string& system_id, std::string_view call_name);
  static Result<State> ParseState(std::string_view text);
  std::string SerializeState(const FakeMachine& machine) const;
  // Starts `machine` on the current boot. REQUIRES: mutex_ held.
  void Boot(FakeMachine& machine);
  Observation Observe(const std::string& system_id, const State& state) const;

  const FakeProviderOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, FakeMachine, std::less<>> machines_;  // GUARDED_BY(mutex_)
  std::map<std::string, int, std::less<>> start_failures_;    // GUARDED_BY(mutex_)
  std::map<std::string, int, std::less<>> polls_;             // GUARDED_BY(mutex_)
  std::array<int, kCallKinds> calls_{};                        // GUARDED_BY(mutex_)
  int machines_created_ = 0;                                   // GUARDED_BY(mutex_)
  int boot_ = 1;                                               // GUARDED_BY(mutex_)
  std::optional<TimePoint> booted_at_;                         // GUARDED_BY(mutex_)
  // Keyed by "<system id> <path>".
  std::map<std::string, std::string, std::less<>> product_answers_;  // GUARDED_BY(mutex_)
  std::map<std::string, double, std::less<>> cpu_seconds_;            // GUARDED_BY(mutex_)
};

}  // namespace puddle
