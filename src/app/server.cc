#include "app/server.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "api/api.h"
#include "api/http_server.h"
#include "api/tls_certificate.h"
#include "app/data_dir.h"
#include "auth/auth_service.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "providers/local/firewall.h"
#include "providers/local/local_provider.h"
#include "queue/embedded/embedded_dispatcher.h"
#include "services/catalog/catalog_service.h"
#include "services/systems/system_service.h"
#include "services/users/user_service.h"
#include "workers/job_runner.h"
#include "workers/jobs/system_jobs.h"
#include "workers/loops/reconcile_loop.h"

namespace puddle {
namespace {

struct Installation {
  std::string id;
  std::string token_secret;
};

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

Status BootstrapAdmin(UserService& users, const DataDir& dir) {
  const char* from_environment = std::getenv("PUDDLE_ADMIN_PASSWORD");
  std::string password = from_environment != nullptr ? from_environment : RandomToken(18);
  PUDDLE_ASSIGN_OR_RETURN(auto created, users.EnsureBootstrapAdmin(password));
  if (!created) return Ok();
  if (from_environment != nullptr) {
    log::Info("created the admin user with the password from PUDDLE_ADMIN_PASSWORD");
    return Ok();
  }
  PUDDLE_RETURN_IF_ERROR(WritePrivateFile(dir.initial_password_path(), password + "\n"));
  log::Info("created the admin user; its password is in a file readable only by Puddle",
            {{"path", dir.initial_password_path()}});
  return Ok();
}

// The version of Debian's jupyter-notebook, or "" when it is not installed.
std::string DetectJupyterVersion() {
  FILE* pipe = popen("jupyter-notebook --version 2>/dev/null", "r");
  if (pipe == nullptr) return {};
  char buffer[64] = {};
  std::string version;
  if (fgets(buffer, sizeof buffer, pipe) != nullptr) version = buffer;
  pclose(pipe);
  while (!version.empty() && (version.back() == '\n' || version.back() == ' ')) version.pop_back();
  if (version.find_first_not_of("0123456789.") != std::string::npos) return {};
  return version;
}

Status EnsureCertificate(const Config& config, const DataDir& dir, std::string& cert,
                         std::string& key) {
  if (!config.tls_cert_file.empty()) {
    cert = config.tls_cert_file;
    key = config.tls_key_file;
    return Ok();
  }
  cert = dir.cert_path();
  key = dir.key_path();
  std::vector<std::string> names = {"localhost", "*." + config.systems_domain};
  if (!config.base_url.empty()) {
    std::string host = config.base_url.substr(config.base_url.find("://") + 3);
    host = host.substr(0, host.find_first_of(":/"));
    bool is_ip = host.find_first_not_of("0123456789.") == std::string::npos;
    if (!host.empty() && !is_ip) names.push_back(host);
  }
  return EnsureSelfSignedCertificate(cert, key, names, {"127.0.0.1", "::1"});
}

std::string SelfExecutable() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string() : path.string();
}

// Runs `body` every `interval` on its own thread until stopped.
class PeriodicThread {
 public:
  PeriodicThread(std::string name, std::chrono::milliseconds interval, std::function<void()> body)
      : name_(std::move(name)), interval_(interval), body_(std::move(body)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~PeriodicThread() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      body_();
      lock.lock();
      wake_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  }

  std::string name_;
  std::chrono::milliseconds interval_;
  std::function<void()> body_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  std::thread thread_;
};

int Fail(const std::string& what, const Error& error) {
  log::Error(what, {{"error", error.message}});
  std::fprintf(stderr, "puddle: %s: %s\n", what.c_str(), error.message.c_str());
  return 1;
}

void WaitForTerminationSignal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int received = 0;
  sigwait(&signals, &received);
  log::Info("shutting down", {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
}

}  // namespace

int Serve(const Config& config) {
  for (const auto& warning : config.warnings) log::Warning(warning);
  if (config.fake_provider_enabled) {
    return Fail("start", Error{ErrorCode::kValidationFailed,
                               "providers.fake is not built yet; remove providers.fake.enabled"});
  }
  if (auto crypto = InitCrypto(); !crypto) return Fail("start", crypto.error());

  // The data directory, locked against a second server, and the store in it.
  auto dir = PrepareDataDir(config.data_dir);
  if (!dir) return Fail("prepare data directory", dir.error());
  auto lock = LockDataDir(*dir);
  if (!lock) return Fail("lock data directory", lock.error());
  SystemClock clock;
  auto store = OpenStore(*dir, clock);
  if (!store) return Fail("open store", store.error());
  auto installation = LoadInstallation(**store, config);
  if (!installation) return Fail("load installation settings", installation.error());

  // Providers. The local one runs systems as unprivileged uids.
  auto uids = LocalProvider::CheckUidRange(config.local.uid_min, config.local.uid_max);
  if (!uids) return Fail("check providers.local.uidRange", uids.error());
  local::FirewallOptions firewall_options;
  firewall_options.installation_id = installation->id;
  firewall_options.uid_min = config.local.uid_min;
  firewall_options.uid_max = config.local.uid_max;
  firewall_options.puddle_listen = config.listen;
  firewall_options.product_listen_address = config.local.listen_address;
  local::SystemFirewall firewall(firewall_options);
  if (auto installed = firewall.Install(); !installed) {
    if (config.local.require_firewall) {
      return Fail("install the firewall rules for local systems, which "
                  "providers.local.network.requireFirewall requires",
                  installed.error());
    }
    log::Warning("firewall rules not installed, so local systems can reach the cloud metadata "
                 "address, Puddle's own port and other systems' products. Set "
                 "providers.local.network.requireFirewall: true to refuse to start instead",
                 {{"error", installed.error().message}});
  } else {
    log::Info("installed the firewall rules for local systems", {{"chain", firewall.chain()}});
  }
  LocalProviderOptions local_options;
  local_options.data_dir = dir->root;
  local_options.installation_id = installation->id;
  local_options.uid_min = config.local.uid_min;
  local_options.uid_max = config.local.uid_max;
  local_options.stop_grace_seconds = config.local.stop_grace_seconds;
  local_options.listen_address = config.local.listen_address;
  local_options.port_min = static_cast<int>(config.local.port_min);
  local_options.port_max = static_cast<int>(config.local.port_max);
  local_options.supervisor_executable = SelfExecutable();
  local_options.clock = &clock;
  LocalProvider local(local_options);
  ProviderMap providers = {{"local", &local}};

  // Services, on the embedded dispatcher.
  EmbeddedDispatcher dispatcher;
  Metrics metrics;
  AuthOptions auth_options;
  auth_options.token_secret = installation->token_secret;
  auth_options.api_keys_enabled = config.api_keys_enabled;
  AuthService auth(**store, auth_options);
  UserService users(**store);
  CatalogService catalog(**store);
  SystemService systems(**store, dispatcher, providers, config, installation->token_secret);
  if (auto admin = BootstrapAdmin(users, *dir); !admin) return Fail("create admin", admin.error());
  if (auto defaults = catalog.EnsureDefaults(DetectJupyterVersion()); !defaults) {
    return Fail("install the default catalog", defaults.error());
  }
  metrics.OnCollect([&store](Metrics& registry) {
    auto counts = (*store)->ReadValue<std::vector<std::pair<SystemStatus, int64_t>>>(
        [](Tx& tx) { return tx.CountSystemsByStatus(); });
    if (!counts) return;
    for (int status = 0; status <= static_cast<int>(SystemStatus::kFailed); ++status) {
      auto name = static_cast<SystemStatus>(status);
      if (name == SystemStatus::kDeleted) continue;
      int64_t count = 0;
      for (const auto& [counted, value] : *counts) {
        if (counted == name) count = value;
      }
      registry.Set("puddle_systems", {{"status", std::string(SystemStatusName(name))}},
                   static_cast<double>(count));
    }
  });

  // Workers. Jobs that a previous process held are returned to the queue: the
  // data-directory lock proves no other process can be running them.
  std::atomic<bool> stopping{false};
  auto requeued = (*store)->WriteValue<int64_t>([](Tx& tx) { return tx.RequeueRunningJobs(); });
  if (requeued && *requeued > 0) {
    log::Info("requeued jobs of the previous run", {{"count", std::to_string(*requeued)}});
  }
  JobRunnerOptions runner_options;
  runner_options.workers = static_cast<int>(config.workers);
  runner_options.process_id = NewId(8);
  runner_options.metrics = &metrics;
  JobRunner runner(**store, dispatcher, runner_options);
  SystemJobsOptions job_options;
  job_options.installation_id = installation->id;
  job_options.stopping = &stopping;
  SystemJobs jobs(**store, providers, systems, job_options);
  jobs.RegisterWith(runner);
  ReconcileLoop reconcile(**store, providers, systems);

  // The HTTPS API.
  std::string cert, key;
  if (auto made = EnsureCertificate(config, *dir, cert, key); !made) {
    return Fail("prepare the TLS certificate", made.error());
  }
  api::Api api({config, **store, auth, users, catalog, systems, metrics});
  HttpServerOptions server_options;
  server_options.listen = config.listen;
  server_options.cert_file = cert;
  server_options.key_file = key;
  server_options.handler = [&api](http::Request& request) { return api.Handle(request); };
  HttpServer server(server_options);
  auto port = server.Start();
  if (!port) return Fail("start the HTTPS server", port.error());

  runner.Start();
  PeriodicThread reconciler("reconcile", std::chrono::seconds(5), [&reconcile] {
    auto changed = reconcile.RunOnce();
    if (!changed) log::Warning("reconcile failed", {{"error", changed.error().message}});
  });
  PeriodicThread reaper("reaper", std::chrono::seconds(15), [&runner] {
    auto reaped = runner.ReapSilentJobs();
    if (!reaped) log::Warning("reaping silent jobs failed", {{"error", reaped.error().message}});
  });
  log::Info("puddle is serving", {{"address", config.listen},
                                  {"port", std::to_string(*port)},
                                  {"data_dir", dir->root}});

  WaitForTerminationSignal();

  // Shutdown: stop taking requests, then stop loops and workers. Systems keep running.
  stopping = true;
  server.Stop();
  reconciler.Stop();
  reaper.Stop();
  runner.Stop();
  close(*lock);
  log::Info("stopped; systems keep running");
  return 0;
}

int ResetPassword(const Config& config, const std::string& username, const std::string& password) {
  if (auto crypto = InitCrypto(); !crypto) return Fail("start", crypto.error());
  auto dir = PrepareDataDir(config.data_dir);
  if (!dir) return Fail("prepare data directory", dir.error());
  SystemClock clock;
  auto store = OpenStore(*dir, clock);
  if (!store) return Fail("open store", store.error());
  UserService users(**store);
  if (auto reset = users.ResetPassword(username, password); !reset) {
    return Fail("reset password", reset.error());
  }
  std::printf("The password of %s is reset; their sessions, tokens and API keys ended.\n",
              username.c_str());
  return 0;
}

}  // namespace puddle
