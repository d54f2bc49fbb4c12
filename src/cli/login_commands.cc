#include "cli/login_commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <istream>
#include <ostream>

#include "cli/api_client.h"
#include "cli/command_support.h"
#include "cli/connection.h"
#include "common/json.h"

namespace puddle::cli {
namespace {

struct LoginFlags {
  std::string url;
  std::string username;
  bool password_stdin = false;
  std::string fingerprint;
  ConnectionOptions connection;
};

struct LogoutFlags {
  bool local_only = false;
  ConnectionOptions connection;
};

int UsageError(const ClientEnvironment& env, const std::string& message) {
  *env.err << "puddle login: " << message << "\nRun with --help for more information.\n";
  return kExitUsage;
}

// The server and certificate check that `login` uses, read before signing in.
struct LoginTarget {
  std::string url;
  std::string expected_fingerprint;  // from --fingerprint, normalized
  std::string ca_file;               // absolute, when a CA file verifies the chain
  std::filesystem::path config_path;
  std::optional<CliConfig> previous;  // cli.yaml as it was, if readable
};

// Returns the exit code of a usage error, or 0 after filling `target`.
int ReadLoginTarget(const ClientEnvironment& env, const LoginFlags& flags, LoginTarget& target) {
  std::string url = flags.url.empty() ? env.env("PUDDLE_URL").value_or("") : flags.url;
  if (url.empty()) {
    return UsageError(env,
                      "missing server URL: pass it (puddle login https://HOST:PORT) or "
                      "set PUDDLE_URL");
  }
  auto normalized = NormalizeBaseUrl(url);
  if (!normalized) return UsageError(env, normalized.error().message);
  target.url = *normalized;

  if (!flags.fingerprint.empty()) {
    auto fingerprint = NormalizeFingerprint(flags.fingerprint);
    if (!fingerprint) {
      return UsageError(env, "--fingerprint \"" + flags.fingerprint +
                                 "\" is not a SHA-256 fingerprint (64 hex digits, colons "
                                 "optional)");
    }
    target.expected_fingerprint = *fingerprint;
  }

  if (!flags.connection.insecure) {
    std::string ca_file = flags.connection.ca_cert;
    if (ca_file.empty()) ca_file = env.env("PUDDLE_CA_CERT").value_or("");
    if (!ca_file.empty()) target.ca_file = std::filesystem::absolute(ca_file).string();
  }

  auto path = CliConfigPath(env.env);
  if (!path) return UsageError(env, path.error().message);
  target.config_path = *path;
  if (auto previous = ReadCliConfig(*path); previous && previous->has_value()) {
    target.previous = **previous;
  } else if (!previous) {
    *env.err << "puddle: warning: " << previous.error().message << "; it will be replaced\n";
  }
  return kExitOk;
}

bool SameServer(const std::optional<CliConfig>& previous, const std::string& url) {
  if (!previous) return false;
  auto stored = NormalizeBaseUrl(previous->url);
  return stored && *stored == url;
}

// Shows the certificate's fingerprint and decides whether to trust it.
// Returns 0 to go on, else the exit code.
int ConfirmFingerprint(const ClientEnvironment& env, const LoginFlags& flags,
                       const LoginTarget& target, const std::string& fingerprint) {
  std::ostream& err = *env.err;
  err << "The server's certificate has SHA-256 fingerprint\n  " << fingerprint << "\n";
  if (!target.ca_file.empty()) {
    err << "It was verified with " << target.ca_file << ".\n";
    return kExitOk;
  }
  if (flags.connection.insecure) {
    err << "puddle: warning: --insecure: the certificate was not checked; later commands "
           "will accept only this one.\n";
    return kExitOk;
  }
  if (!target.expected_fingerprint.empty()) {
    if (fingerprint != target.expected_fingerprint) {
      PrintError(err,
                 CommandError(ErrorCode::kValidationFailed,
                              "the server's certificate fingerprint differs from --fingerprint " +
                                  target.expected_fingerprint + "; nothing was sent"));
      return kExitError;
    }
    err << "It matches --fingerprint.\n";
    return kExitOk;
  }

  const bool known = SameServer(target.previous, target.url) &&
                     NormalizeFingerprint(target.previous->fingerprint_sha256) == fingerprint;
  if (known) {
    err << "It is the certificate pinned at the last login.\n";
    return kExitOk;
  }
  if (SameServer(target.previous, target.url) && !target.previous->fingerprint_sha256.empty()) {
    err << "puddle: warning: this differs from the fingerprint pinned at the last login, "
        << target.previous->fingerprint_sha256 << ".\n";
  }
  err << "Compare it with the output of `openssl x509 -in <dataDir>/tls/cert.pem -noout "
         "-fingerprint -sha256` on the server (or the fingerprint of the certificate "
         "configured as tls.certFile).\n";
  if (!env.terminal->IsInteractive()) {
    err << "Standard input is not a terminal, so the certificate is pinned without asking; "
           "pass --fingerprint to check it.\n";
    return kExitOk;
  }
  std::optional<std::string> answer = env.terminal->Prompt("Trust this certificate? [y/N] ", true);
  if (answer && (*answer == "y" || *answer == "Y" || *answer == "yes")) return kExitOk;
  PrintError(err, CommandError(ErrorCode::kValidationFailed,
                               "login cancelled: the certificate was not trusted"));
  return kExitError;
}

// Reads the password from standard input or the terminal; nullopt after
// printing why it could not.
std::optional<std::string> ReadPassword(const ClientEnvironment& env, const LoginFlags& flags,
                                        int& exit_code) {
  std::optional<std::string> password;
  if (flags.password_stdin) {
    std::string line;
    if (std::getline(*env.in, line)) password = line;
    if (password && !password->empty() && password->back() == '\r') password->pop_back();
  } else if (env.terminal->IsInteractive()) {
    password = env.terminal->Prompt("Password: ", false);
  } else {
    exit_code = UsageError(env,
                           "standard input is not a terminal; pass --password-stdin and "
                           "write the password to standard input");
    return std::nullopt;
  }
  if (!password || password->empty()) {
    PrintError(*env.err, CommandError(ErrorCode::kValidationFailed, "no password was given"));
    exit_code = kExitError;
    return std::nullopt;
  }
  return password;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "unknown-host";
  return name;
}

// Deletes the API key an earlier login stored for the same server, with that
// key's own token, so logging in again does not leave keys behind. `client`
// is switched to the previous key.
void DeletePreviousKey(const ClientEnvironment& env, const LoginTarget& target, ApiClient& client,
                       const std::string& new_key_id) {
  if (!target.previous) return;
  if (!SameServer(target.previous, target.url)) {
    *env.err << "puddle: note: this replaces the login to " << target.previous->url
             << "; its API key " << target.previous->api_key_id << " stays on that server\n";
    return;
  }
  const CliConfig& previous = *target.previous;
  if (previous.api_key_id.empty() || previous.api_key_id == new_key_id) return;

  client.UseApiKey(previous.api_key_id, previous.api_secret_key);
  auto deleted = client.Delete("/api/v1/api-keys/" + UrlEncode(previous.api_key_id));
  if (deleted || deleted.error().code == ErrorCode::kUnauthenticated ||
      deleted.error().code == ErrorCode::kNotFound) {
    return;  // deleted now, or already gone
  }
  *env.err << "puddle: warning: could not delete the previous API key " << previous.api_key_id
           << ": " << deleted.error().message << "; delete it in the web UI\n";
}

int RunLogin(const ClientEnvironment& env, const LoginFlags& flags) {
  LoginTarget target;
  if (int code = ReadLoginTarget(env, flags, target); code != kExitOk) return code;

  std::string username = flags.username;
  if (username.empty() && env.terminal->IsInteractive()) {
    username = env.terminal->Prompt("Username: ", true).value_or("");
  }
  if (username.empty()) return UsageError(env, "missing user name: pass --username NAME");

  // Connect once without credentials to see the certificate before any
  // secret is sent.
  TlsPolicy probe_tls;
  probe_tls.mode = target.ca_file.empty() ? TlsMode::kInsecure : TlsMode::kCaFile;
  probe_tls.ca_file = target.ca_file;
  auto probe_transport = env.make_transport(target.url, probe_tls);
  if (!probe_transport) {
    PrintError(*env.err, probe_transport.error());
    return kExitError;
  }
  auto probe = (*probe_transport)->Send(HttpCall{"GET", "/healthz", std::nullopt, {}});
  if (!probe) {
    PrintError(*env.err, probe.error());
    return kExitError;
  }
  const std::string fingerprint = probe->peer_fingerprint;
  // Close the probe's connection; a server with a single worker would
  // otherwise keep the next connection waiting behind it.
  probe_transport->reset();
  if (int code = ConfirmFingerprint(env, flags, target, fingerprint); code != kExitOk) {
    return code;
  }

  int exit_code = kExitOk;
  std::optional<std::string> password = ReadPassword(env, flags, exit_code);
  if (!password) return exit_code;

  // From here on, only the certificate just shown is accepted, even with
  // --insecure, so the password goes to the server whose certificate is stored.
  TlsPolicy session_tls = probe_tls;
  if (target.ca_file.empty()) {
    session_tls.mode = TlsMode::kPinned;
    session_tls.pinned_fingerprint = fingerprint;
  }
  auto transport = env.make_transport(target.url, session_tls);
  if (!transport) {
    PrintError(*env.err, transport.error());
    return kExitError;
  }
  ApiClient client(std::move(*transport));
  auto token = client.TokenForPassword(username, *password);
  password->assign(password->size(), '\0');
  if (!token) {
    PrintError(*env.err, token.error());
    return kExitError;
  }
  client.UseToken(*token);

  const std::string key_name = "cli@" + (env.hostname.empty() ? HostName() : env.hostname);
  auto key =
      client.Post("/api/v1/api-keys", json::Serialize(boost::json::object{{"name", key_name}}));
  if (!key) {
    PrintError(*env.err, key.error().WithContext("create API key"));
    return kExitError;
  }
  CliConfig config;
  config.url = target.url;
  config.fingerprint_sha256 = fingerprint;
  config.ca_cert = target.ca_file;
  if (key->json.is_object()) {
    const boost::json::object& body = key->json.as_object();
    if (const auto* id = body.if_contains("apiKeyId"); id && id->is_string()) {
      config.api_key_id = std::string(id->as_string());
    }
    if (const auto* secret = body.if_contains("apiSecretKey"); secret && secret->is_string()) {
      config.api_secret_key = std::string(secret->as_string());
    }
  }
  if (config.api_key_id.empty() || config.api_secret_key.empty()) {
    PrintError(*env.err, CommandError(ErrorCode::kInternal,
                                      "create API key: the server's reply has no apiKeyId or "
                                      "apiSecretKey"));
    return kExitError;
  }

  if (auto written = WriteCliConfig(target.config_path, config); !written) {
    PrintError(*env.err, written.error());
    return kExitError;
  }
  DeletePreviousKey(env, target, client, config.api_key_id);
  *env.out << "Logged in to " << target.url << " as " << username << ". API key "
           << config.api_key_id << " (" << key_name << ") is stored in "
           << target.config_path.string() << ".\n";
  return kExitOk;
}

int RunLogout(const ClientEnvironment& env, const LogoutFlags& flags) {
  auto path = CliConfigPath(env.env);
  if (!path) {
    PrintError(*env.err, path.error());
    return kExitError;
  }
  auto stored = ReadCliConfig(*path);
  if (!stored) {
    PrintError(*env.err,
               stored.error().WithContext("run `puddle logout --local` to remove the file"));
    return kExitError;
  }
  if (!stored->has_value()) {
    *env.out << "Not logged in: " << path->string() << " does not exist.\n";
    return kExitOk;
  }

  const CliConfig& config = **stored;
  if (!flags.local_only && !config.api_key_id.empty()) {
    auto deleted = [&]() -> Status {
      auto url = NormalizeBaseUrl(config.url);
      if (!url) return tl::unexpected(url.error());
      std::optional<std::string> pin = NormalizeFingerprint(config.fingerprint_sha256);
      TlsPolicy tls = ChooseTlsPolicy(env.env, flags.connection, pin.value_or(""), config.ca_cert);
      auto transport = env.make_transport(*url, tls);
      if (!transport) return tl::unexpected(transport.error());
      ApiClient client(std::move(*transport));
      client.UseApiKey(config.api_key_id, config.api_secret_key);
      auto reply = client.Delete("/api/v1/api-keys/" + UrlEncode(config.api_key_id));
      if (reply) return Ok();
      return tl::unexpected(reply.error());
    }();
    if (deleted) {
      *env.out << "Deleted API key " << config.api_key_id << " on " << config.url << ".\n";
    } else if (deleted.error().code == ErrorCode::kUnauthenticated ||
               deleted.error().code == ErrorCode::kNotFound) {
      *env.out << "API key " << config.api_key_id << " was already deleted on " << config.url
               << ".\n";
    } else {
      PrintError(*env.err, deleted.error().WithContext("delete API key " + config.api_key_id));
      *env.err << "The file " << path->string() << " is kept; run `puddle logout --local` to "
               << "remove it without deleting the key on the server.\n";
      return kExitError;
    }
  }

  if (auto removed = RemoveCliConfig(*path); !removed) {
    PrintError(*env.err, removed.error());
    return kExitError;
  }
  *env.out << "Removed " << path->string() << ".\n";
  return kExitOk;
}

}  // namespace

void AddLoginCommand(CLI::App& app, int& exit_code, std::shared_ptr<const ClientEnvironment> env) {
  auto flags = std::make_shared<LoginFlags>();
  CLI::App* login = app.add_subcommand(
      "login", "Sign in to a Puddle server and store an API key for the other commands");
  login->add_option("url", flags->url, "server URL, https://HOST[:PORT]; default $PUDDLE_URL");
  login->add_option("--username,-u", flags->username, "user name; asked for when omitted");
  login->add_flag("--password-stdin", flags->password_stdin,
                  "read the password from the first line of standard input");
  login->add_option("--fingerprint", flags->fingerprint,
                    "expected SHA-256 fingerprint of the server's certificate; login fails if "
                    "it differs");
  AddConnectionOptions(*login, flags->connection);
  login->callback([flags, env, &exit_code] {
    RunCommand(*env, exit_code, [&] { return RunLogin(*env, *flags); });
  });
}

void AddLogoutCommand(CLI::App& app, int& exit_code, std::shared_ptr<const ClientEnvironment> env) {
  auto flags = std::make_shared<LogoutFlags>();
  CLI::App* logout = app.add_subcommand(
      "logout", "Delete the stored API key on the server and remove the stored login");
  logout->add_flag("--local", flags->local_only,
                   "only remove the local file, leaving the API key on the server");
  AddConnectionOptions(*logout, flags->connection);
  logout->callback([flags, env, &exit_code] {
    RunCommand(*env, exit_code, [&] { return RunLogout(*env, *flags); });
  });
}

}  // namespace puddle::cli
