#include "app/server.h"

#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>

#include "api/api.h"
#include "api/http_server.h"
#include "api/proxy/access_proxy.h"
#include "api/proxy/access_routes.h"
#include "api/tls_certificate.h"
#include "app/runtime.h"
#include "app/store_setup.h"
#include "auth/auth_service.h"
#include "auth/system_access.h"
#include "common/crypto.h"
#include "common/log.h"
#include "config/system_origins.h"
#include "services/catalog/catalog_service.h"
#include "services/users/user_service.h"

namespace puddle {
namespace {

// API handler threads, each of which may hold a store connection.
// Event streams hold a handler thread each (at most kMaxEventStreams), so there
// are enough left for ordinary requests.
constexpr int kHandlerThreads = 16;
// Connections beyond the workers and handlers: loops, heartbeats and metrics.
constexpr int kSpareConnections = 4;

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
  std::vector<std::string> addresses = {"127.0.0.1", "::1"};
  if (!config.base_url.empty()) {
    std::string authority = config.base_url.substr(config.base_url.find("://") + 3);
    std::string host = HostOfHeader(authority.substr(0, authority.find('/')));
    bool is_ip = host.find_first_not_of("0123456789.") == std::string::npos ||
                 host.find(':') != std::string::npos;
    auto& list = is_ip ? addresses : names;
    if (!host.empty() && std::find(list.begin(), list.end(), host) == list.end()) {
      list.push_back(host);
    }
  }
  return EnsureSelfSignedCertificate(cert, key, names, addresses);
}

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

// Opens the runtime after the checks every server command shares.
Result<std::unique_ptr<Runtime>> OpenRuntime(const Config& config, int extra_connections) {
  for (const auto& warning : config.warnings) log::Warning(warning);
  PUDDLE_RETURN_IF_ERROR(InitCrypto());
  return Runtime::Open(config, extra_connections);
}

// Counts systems per status for /metrics.
void CollectSystemCounts(Store& store, Metrics& registry) {
  auto counts = store.ReadValue<std::vector<std::pair<SystemStatus, int64_t>>>(
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
}

}  // namespace

int Serve(const Config& config) {
  if (config.workers == 0 && !config.database.IsPostgres()) {
    log::Warning("serving with no job workers on the embedded SQLite store, where no `puddle "
                 "worker` can run either: requested changes to systems stay queued until serve "
                 "runs with --workers 1 or more");
  }
  auto runtime = OpenRuntime(config, kHandlerThreads + kSpareConnections);
  if (!runtime) return Fail("start", runtime.error());
  Runtime& run = **runtime;
  Store& store = run.store();

  AuthOptions auth_options;
  auth_options.token_secret = run.installation().token_secret;
  auth_options.api_keys_enabled = config.api_keys_enabled;
  // Half the cores for argon2id at most, so sign-in floods leave the rest.
  auth_options.concurrent_password_checks =
      std::max(2, static_cast<int>(std::thread::hardware_concurrency() / 2));
  AuthService auth(store, auth_options);
  UserService users(store);
  CatalogService catalog(store);
  if (auto admin = BootstrapAdmin(users, run.data_dir()); !admin) {
    return Fail("create admin", admin.error());
  }
  if (auto defaults = catalog.EnsureDefaults(DetectJupyterVersion()); !defaults) {
    return Fail("install the default catalog", defaults.error());
  }
  run.metrics().OnCollect([&store](Metrics& registry) { CollectSystemCounts(store, registry); });

  std::string cert, key;
  if (auto made = EnsureCertificate(config, run.data_dir(), cert, key); !made) {
    return Fail("prepare the TLS certificate", made.error());
  }
  api::Api api({config, store, auth, users, catalog, run.systems(), run.metrics()});
  HttpServerOptions server_options;
  server_options.listen = config.listen;
  server_options.cert_file = cert;
  server_options.key_file = key;
  server_options.handler_threads = kHandlerThreads;
  server_options.handler = [&api](http::Request& request) { return api.Handle(request); };
  // The access proxy sees every request first: it routes by Host.
  SystemAccessService system_access(store, auth);
  proxy::AccessProxy access_proxy(
      {config, store, auth, system_access, run.systems(), &run.activity()});
  proxy::AddAccessRoutes(api.mutable_router(), access_proxy);
  server_options.head_handler = [&access_proxy](const http::Request& request) {
    return access_proxy.Decide(request);
  };
  HttpServer server(server_options);
  auto port = server.Start();
  if (!port) return Fail("start the HTTPS server", port.error());

  run.Start();
  log::Info("puddle is serving", {{"address", config.listen},
                                  {"port", std::to_string(*port)},
                                  {"data_dir", run.data_dir().root},
                                  {"store", std::string(store.Dialect())},
                                  {"workers", std::to_string(config.workers)}});

  WaitForTerminationSignal();

  // Stop taking requests, then stop loops and workers. Systems keep running.
  server.Stop();
  run.Stop();
  log::Info("stopped; systems keep running");
  return 0;
}

int RunWorker(const Config& config) {
  if (!config.database.IsPostgres()) {
    std::fprintf(stderr,
                 "puddle: puddle worker needs a shared PostgreSQL store: set "
                 "db.connection.drivername to postgres, with db.connection.host, user and "
                 "password, in the config that `puddle serve` uses too. With the embedded SQLite "
                 "store, `puddle serve` runs the workers itself.\n");
    return 1;
  }
  auto runtime = OpenRuntime(config, kSpareConnections);
  if (!runtime) return Fail("start", runtime.error());
  Runtime& run = **runtime;

  run.Start();
  log::Info("puddle worker is running", {{"data_dir", run.data_dir().root},
                                         {"workers", std::to_string(config.workers)}});

  WaitForTerminationSignal();

  run.Stop();
  log::Info("stopped; systems keep running");
  return 0;
}

int ResetPassword(const Config& config, const std::string& username, const std::string& password) {
  if (auto crypto = InitCrypto(); !crypto) return Fail("start", crypto.error());
  // On PostgreSQL the data directory is not needed, so none is created.
  DataDir dir;
  if (!config.database.IsPostgres()) {
    // A mistyped --data-dir must not create an empty installation.
    std::string database = config.data_dir + "/puddle.db";
    if (access(database.c_str(), F_OK) != 0) {
      return Fail("reset password",
                  Error{ErrorCode::kNotFound,
                        "no Puddle database at " + database +
                            "; pass the same --data-dir (or --config) as `puddle serve`"});
    }
    auto prepared = PrepareDataDir(config.data_dir);
    if (!prepared) return Fail("prepare data directory", prepared.error());
    dir = std::move(*prepared);
  }
  SystemClock clock;
  auto store = OpenConfiguredStore(config, dir, clock, 1);
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
