#include "cli/command_support.h"

#include <CLI/CLI.hpp>

#include <exception>
#include <ostream>

namespace puddle::cli {

void AddConnectionOptions(CLI::App& command, ConnectionOptions& options) {
  command.add_option("--ca-cert", options.ca_cert,
                     "verify the server's certificate chain and host name with this CA file "
                     "(PEM) instead of the fingerprint pinned at login; default $PUDDLE_CA_CERT");
  command.add_flag("--insecure", options.insecure, "do not check the server's certificate at all");
}

std::unique_ptr<ApiClient> ConnectWithApiKey(const ClientEnvironment& env,
                                             const ConnectionOptions& options) {
  auto connection = ResolveConnection(env.env, options);
  if (!connection) {
    PrintError(*env.err, connection.error());
    return nullptr;
  }
  if (auto path = CliConfigPath(env.env)) {
    if (std::string warning = CheckCliConfigPermissions(*path); !warning.empty()) {
      *env.err << "puddle: warning: " << warning << "\n";
    }
  }

  auto transport = env.make_transport(connection->base_url, connection->tls);
  if (!transport) {
    PrintError(*env.err, transport.error());
    return nullptr;
  }
  auto client = std::make_unique<ApiClient>(std::move(*transport));
  client->UseApiKey(connection->api_key_id, connection->api_secret_key);
  return client;
}

void RunCommand(const ClientEnvironment& env, int& exit_code, const std::function<int()>& command) {
  try {
    exit_code = command();
  } catch (const std::exception& exception) {
    *env.err << "puddle: internal error: " << exception.what() << "\n";
    exit_code = kExitError;
  }
  env.out->flush();
  env.err->flush();
}

void PrintJsonBody(std::ostream& out, const std::string& body) {
  out << body;
  if (body.empty() || body.back() != '\n') out << "\n";
}

}  // namespace puddle::cli
