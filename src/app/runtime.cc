#include "app/runtime.h"

#include <unistd.h>

#include <filesystem>

#include "app/store_setup.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/log.h"
#include "providers/local/firewall.h"
#include "queue/embedded/embedded_dispatcher.h"
#include "queue/redis/redis_dispatcher.h"
#include "workers/loops/queue_sweeper.h"

namespace puddle {
namespace {

// How often each loop runs, and how long its lease outlives a process that
// died without releasing it.
constexpr std::chrono::seconds kReconcileInterval{5};
constexpr std::chrono::seconds kReconcileLeaseTtl{30};
constexpr std::chrono::seconds kReaperInterval{15};
constexpr std::chrono::seconds kSweeperInterval{30};
constexpr std::chrono::seconds kSweeperLeaseTtl{60};
constexpr std::chrono::seconds kReaperLeaseTtl{60};
constexpr std::chrono::seconds kBudgetInterval{60};
constexpr std::chrono::seconds kBudgetLeaseTtl{120};
// The idle loop's lease outlives a few of its runs (idleTimeout.checkIntervalSeconds).
constexpr int kIdleLeaseTtlIntervals = 4;
// Every process writes the proxy activity it saw this often.
constexpr std::chrono::seconds kActivityFlushInterval{30};

ActivityPolicy PolicyFrom(const Config& config) {
  ActivityPolicy policy;
  policy.warning = std::chrono::minutes(config.idle_warning_minutes);
  policy.cpu_busy_percent = static_cast<double>(config.cpu_busy_percent);
  policy.cpu_window = std::chrono::minutes(config.cpu_window_minutes);
  return policy;
}

Result<Installation> LoadInstallation(Store& store, const Config& config) {
  Installation installation;
  PUDDLE_RETURN_IF_ERROR(store.Write([&](Tx& tx) -> Status {
    PUDDLE_ASSIGN_OR_RETURN(installation.id, tx.PutSettingIfAbsent("installation_id", NewId(16)));
    PUDDLE_ASSIGN_OR_RETURN(installation.token_secret,
                            tx.PutSettingIfAbsent("token_secret", RandomToken(32)));
    return Ok();
  }));
  // A configured secret wins; the generated one stays for when it is removed.
  if (!config.token_secret.empty()) installation.token_secret = config.token_secret;
  return installation;
}

std::string SelfExecutable() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string() : path.string();
}

// Puddle's own listen address, PostgreSQL and Redis, as host:port.
std::vector<std::string> ServiceDestinations(const Config& config) {
  std::vector<std::string> destinations = {config.listen};
  if (config.database.IsPostgres()) destinations.push_back(PostgresAddress(config.database));
  if (config.redis.Enabled() && config.redis.protocol == "tcp") {
    destinations.push_back(config.redis.address);
  }
  return destinations;
}

// Installs the rules of the systems' network namespaces, or logs why systems
// share the host's network.
Status PrepareSystemNetworks(const Config& config, LocalProvider& local) {
  if (!config.local.network_isolation) {
    log::Warning("providers.local.network.isolation is false, so local systems share the host's "
                 "network: products listen on providers.local.listenAddress and only the "
                 "uid-range firewall keeps them from other addresses",
                 {{"listen_address", config.local.listen_address}});
    return Ok();
  }
  if (!local.NetworkIsolated()) {
    log::Warning("local systems cannot get their own network namespaces, so they share the "
                 "host's network: products listen on providers.local.listenAddress and only the "
                 "uid-range firewall keeps them from other addresses",
                 {{"reason", local.NetworkFallbackReason()},
                  {"listen_address", config.local.listen_address}});
    return Ok();
  }
  if (auto prepared = local.PrepareNetwork(); !prepared) {
    return tl::unexpected(prepared.error().WithContext(
        "set up the local systems' network namespaces; fix the cause, or set "
        "providers.local.network.isolation: false to run systems in the host's network"));
  }
  log::Info("local systems run in their own network namespaces",
            {{"cidr", config.local.network_cidr},
             {"allow", std::to_string(config.local.network_allow.size()) + " entries"}});
  return Ok();
}

// Installs the iptables rules for the systems' uids. Every process of the
// installation installs the same rules into the same chain, so they must read
// the same config (listen included).
Status InstallFirewall(const Config& config, const std::string& installation_id) {
  local::FirewallOptions options;
  options.installation_id = installation_id;
  options.uid_min = config.local.uid_min;
  options.uid_max = config.local.uid_max;
  options.puddle_listen = config.listen;
  options.product_listen_address = config.local.listen_address;
  if (config.database.IsPostgres()) {
    options.extra_destinations.push_back(PostgresAddress(config.database));
  }
  if (config.redis.Enabled() && config.redis.protocol == "tcp") {
    options.extra_destinations.push_back(config.redis.address);
  }
  local::SystemFirewall firewall(options);
  auto installed = firewall.Install();
  if (installed) {
    log::Info("installed the firewall rules for local systems", {{"chain", firewall.chain()}});
    return Ok();
  }
  if (config.local.require_firewall) {
    return tl::unexpected(installed.error().WithContext(
        "install the firewall rules for local systems, which "
        "providers.local.network.requireFirewall requires"));
  }
  log::Warning("firewall rules not installed, so local systems can reach the cloud metadata "
               "address, Puddle's own port, its database and other systems' products. Set "
               "providers.local.network.requireFirewall: true to refuse to start instead",
               {{"error", installed.error().message}});
  return Ok();
}

}  // namespace

Runtime::Runtime(const Config& config) : config_(config), process_id_(NewId(8)) {}

Runtime::~Runtime() {
  Stop();
  if (lock_fd_ >= 0) close(lock_fd_);
}

Result<std::unique_ptr<Runtime>> Runtime::Open(const Config& config, int extra_connections) {
  if (config.fake_provider_enabled) {
    return MakeError(ErrorCode::kValidationFailed,
                     "providers.fake is not built yet; remove providers.fake.enabled");
  }
  std::unique_ptr<Runtime> runtime(new Runtime(config));
  // The data directory contains the TLS certificate and the local provider's
  // files on every store, and the database itself on SQLite.
  auto dir = PrepareDataDir(config.data_dir);
  if (!dir) return tl::unexpected(dir.error().WithContext("prepare the data directory"));
  runtime->dir_ = std::move(*dir);

  int pool_size = static_cast<int>(config.workers) + extra_connections;
  PUDDLE_RETURN_IF_ERROR(runtime->OpenStoreAndInstallation(pool_size));
  // Redis before the providers, so an unreachable Redis fails start-up before
  // any firewall rule is installed.
  PUDDLE_RETURN_IF_ERROR(runtime->OpenDispatcher());
  PUDDLE_RETURN_IF_ERROR(runtime->OpenProviders());
  runtime->systems_ = std::make_unique<SystemService>(*runtime->store_, *runtime->dispatcher_,
                                                      runtime->providers_, config,
                                                      runtime->installation_.token_secret);
  runtime->activity_ = std::make_unique<ActivityTracker>(runtime->clock_, PolicyFrom(config));
  runtime->systems_->SetActivityTracker(runtime->activity_.get());
  runtime->CreateWorkers();
  return runtime;
}

Status Runtime::OpenStoreAndInstallation(int pool_size) {
  // Several processes share PostgreSQL; SQLite allows one, which the lock enforces.
  if (!config_.database.IsPostgres()) {
    auto lock = LockDataDir(dir_);
    if (!lock) return tl::unexpected(lock.error().WithContext("lock the data directory"));
    lock_fd_ = *lock;
  }
  auto store = OpenConfiguredStore(config_, dir_, clock_, pool_size);
  if (!store) return tl::unexpected(store.error());
  store_ = std::move(*store);

  auto installation = LoadInstallation(*store_, config_);
  if (!installation) {
    return tl::unexpected(installation.error().WithContext("load the installation settings"));
  }
  installation_ = std::move(*installation);
  return Ok();
}

// The local provider runs systems as unprivileged uids.
Status Runtime::OpenProviders() {
  auto uids = LocalProvider::CheckUidRange(config_.local.uid_min, config_.local.uid_max);
  if (!uids) return tl::unexpected(uids.error().WithContext("check providers.local.uidRange"));
  PUDDLE_RETURN_IF_ERROR(InstallFirewall(config_, installation_.id));

  LocalProviderOptions options;
  options.data_dir = dir_.root;
  options.installation_id = installation_.id;
  options.uid_min = config_.local.uid_min;
  options.uid_max = config_.local.uid_max;
  options.stop_grace_seconds = config_.local.stop_grace_seconds;
  options.listen_address = config_.local.listen_address;
  options.port_min = static_cast<int>(config_.local.port_min);
  options.port_max = static_cast<int>(config_.local.port_max);
  options.supervisor_executable = SelfExecutable();
  options.clock = &clock_;
  options.network_isolation = config_.local.network_isolation;
  options.network.cidr = config_.local.network_cidr;
  options.network.allow = config_.local.network_allow;
  options.network.denied = ServiceDestinations(config_);
  options.private_tmp = config_.local.private_tmp;
  local_ = std::make_unique<LocalProvider>(options);
  providers_ = {{"local", local_.get()}};
  return PrepareSystemNetworks(config_, *local_);
}

Status Runtime::OpenDispatcher() {
  if (!config_.redis.Enabled()) {
    dispatcher_ = std::make_unique<EmbeddedDispatcher>();
    return Ok();
  }
  RedisOptions options;
  options.protocol = config_.redis.protocol;
  options.address = config_.redis.address;
  options.password = config_.redis.password;
  options.tls = config_.redis.tls;
  auto redis = RedisDispatcher::Open(options);
  if (!redis) return tl::unexpected(redis.error().WithContext("connect to the Redis queue"));
  log::Info("job wake-ups go through Redis", {{"address", config_.redis.address}});
  dispatcher_ = std::move(*redis);
  return Ok();
}

void Runtime::CreateWorkers() {
  JobRunnerOptions runner_options;
  runner_options.workers = static_cast<int>(config_.workers);
  runner_options.process_id = process_id_;
  runner_options.metrics = &metrics_;
  runner_ = std::make_unique<JobRunner>(*store_, *dispatcher_, runner_options);

  SystemJobsOptions job_options;
  job_options.installation_id = installation_.id;
  job_options.stopping = &stopping_;
  jobs_ = std::make_unique<SystemJobs>(*store_, providers_, *systems_, job_options);
  jobs_->RegisterWith(*runner_);
  reconcile_ = std::make_unique<ReconcileLoop>(*store_, providers_, *systems_);
  budget_ = std::make_unique<BudgetLoop>(*store_, *systems_, config_);
  idle_ = std::make_unique<IdleLoop>(*store_, providers_, *systems_, *activity_);
}

// Only on SQLite: the data-directory lock proves that no other process runs
// the jobs a previous process claimed. On PostgreSQL another process may.
void Runtime::RequeueJobsOfPreviousRun() {
  if (config_.database.IsPostgres()) return;
  auto requeued = store_->WriteValue<int64_t>([](Tx& tx) { return tx.RequeueRunningJobs(); });
  if (!requeued) {
    log::Warning("requeueing the jobs of the previous run failed; the reaper requeues them later",
                 {{"error", requeued.error().message}});
  } else if (*requeued > 0) {
    log::Info("requeued jobs of the previous run", {{"count", std::to_string(*requeued)}});
  }
}

PeriodicLoopOptions Runtime::LoopOptions(const std::string& name,
                                         std::chrono::milliseconds interval,
                                         std::chrono::milliseconds lease_ttl) {
  PeriodicLoopOptions options;
  options.name = name;
  options.interval = interval;
  options.lease_store = config_.database.IsPostgres() ? store_.get() : nullptr;
  options.holder = process_id_;
  options.lease_ttl = lease_ttl;
  return options;
}

void Runtime::Start() {
  RequeueJobsOfPreviousRun();
  runner_->Start();
  reconciler_ = std::make_unique<PeriodicLoop>(
      LoopOptions("reconcile", kReconcileInterval, kReconcileLeaseTtl), [this] {
        auto changed = reconcile_->RunOnce();
        if (!changed) log::Warning("reconcile failed", {{"error", changed.error().message}});
      });
  reaper_ = std::make_unique<PeriodicLoop>(
      LoopOptions("reaper", kReaperInterval, kReaperLeaseTtl), [this] {
        auto reaped = runner_->ReapSilentJobs();
        if (!reaped) log::Warning("reaping silent jobs failed", {{"error", reaped.error().message}});
      });
  budget_checker_ = std::make_unique<PeriodicLoop>(
      LoopOptions("budget", kBudgetInterval, kBudgetLeaseTtl), [this] {
        auto checked = budget_->RunOnce();
        if (!checked) log::Warning("checking budgets failed", {{"error", checked.error().message}});
      });
  std::chrono::seconds idle_interval{config_.idle_check_interval_seconds};
  idle_checker_ = std::make_unique<PeriodicLoop>(
      LoopOptions("idle", idle_interval, idle_interval * kIdleLeaseTtlIntervals), [this] {
        auto checked = idle_->RunOnce();
        if (!checked) log::Warning("checking idle systems failed", {{"error", checked.error().message}});
      });
  PeriodicLoopOptions flush_options;
  flush_options.name = "activity-flush";
  // As often as the idle loop looks, so that the process holding its lease
  // sees other processes' proxy activity at most one check late.
  flush_options.interval = std::min<std::chrono::milliseconds>(kActivityFlushInterval, idle_interval);
  activity_flusher_ = std::make_unique<PeriodicLoop>(flush_options, [this] {
    auto flushed = activity_->Flush(*store_);
    if (!flushed) log::Warning("writing proxy activity failed", {{"error", flushed.error().message}});
  });
  if (config_.redis.Enabled()) {
    // Wake-ups lost to a Redis flush or restart are published again.
    sweeper_ = std::make_unique<PeriodicLoop>(
        LoopOptions("queue-sweeper", kSweeperInterval, kSweeperLeaseTtl), [this] {
          auto swept = RepublishQueuedJobs(*store_, *dispatcher_, clock_.Now() - kSweeperInterval);
          if (!swept) log::Warning("republishing queued jobs failed", {{"error", swept.error().message}});
        });
  }
}

void Runtime::Stop() {
  stopping_ = true;
  if (reconciler_) reconciler_->Stop();
  if (reaper_) reaper_->Stop();
  if (sweeper_) sweeper_->Stop();
  if (budget_checker_) budget_checker_->Stop();
  if (idle_checker_) idle_checker_->Stop();
  if (activity_flusher_) {
    activity_flusher_->Stop();
    // What the proxy saw since the last flush would be lost otherwise.
    auto flushed = activity_->Flush(*store_);
    if (!flushed) log::Warning("writing proxy activity failed", {{"error", flushed.error().message}});
  }
  if (runner_) runner_->Stop();
}

}  // namespace puddle
