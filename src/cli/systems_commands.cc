#include "cli/systems_commands.h"

#include <CLI/CLI.hpp>

#include <ostream>
#include <regex>

#include "cli/api_client.h"
#include "cli/command_support.h"
#include "cli/system_output.h"
#include "cli/system_wait.h"
#include "common/json.h"
#include "model/system.h"

namespace puddle::cli {
namespace {

constexpr int kListPageSize = 500;
constexpr int kDefaultWaitSeconds = 900;
constexpr int kMaxWaitSeconds = 7 * 24 * 3600;

struct SystemsFlags {
  ConnectionOptions connection;
  std::string output = "table";
  bool json() const { return output == "json"; }
};

struct ListFlags {
  bool all = false;
  std::string owner;
  std::string status;
};

struct CreateFlags {
  std::string name;
  std::string product;
  std::string version;
  std::string system_type;
  int64_t idle_timeout_minutes = 0;
  bool has_idle_timeout = false;
};

struct WaitFlags {
  bool wait = false;
  int timeout_seconds = kDefaultWaitSeconds;
};

// One of the actions whose path ends in a settled status.
struct Action {
  const char* name;  // "start"
  const char* description;
  const char* final_status;  // "running"
};

constexpr Action kActions[] = {
    {"start", "Start a stopped or failed system", "running"},
    {"stop", "Stop a system; its disk is kept", "stopped"},
    {"reboot", "Reboot a running system", "running"},
    {"delete", "Delete a system and its disk", "deleted"},
};

std::string SystemTarget(const std::string& id) { return "/api/v1/systems/" + UrlEncode(id); }

const CLI::Validator& SystemIdValidator() {
  static const CLI::Validator validator(
      [](std::string& value) -> std::string {
        static const std::regex pattern("^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$");
        if (std::regex_match(value, pattern)) return "";
        return "invalid system id \"" + value +
               "\": ids are 1-40 lower-case letters, digits "
               "and inner hyphens, as `puddle systems list` shows them";
      },
      "SYSTEM_ID");
  return validator;
}

const CLI::Validator& StatusValidator() {
  static const CLI::Validator validator(
      [](std::string& value) -> std::string {
        if (ParseSystemStatus(value)) return "";
        return "invalid status \"" + value +
               "\": expected one of queued, provisioning, "
               "starting, running, stopping, stopped, rebooting, deleting, deleted, failed";
      },
      "STATUS");
  return validator;
}

void AddWaitOptions(CLI::App& command, WaitFlags& flags, const std::string& final_status) {
  command.add_flag("--wait", flags.wait,
                   "wait until the system is " + final_status + ", printing its events");
  command
      .add_option("--timeout", flags.timeout_seconds,
                  "with --wait: seconds to wait before giving up with exit code 3")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxWaitSeconds));
}

void PrintSystem(const ClientEnvironment& env, const SystemsFlags& flags, const ApiReply& reply) {
  if (flags.json()) {
    PrintJsonBody(*env.out, reply.body);
  } else if (reply.json.is_object()) {
    PrintSystemSummary(reply.json.as_object(), *env.out);
  } else {
    PrintJsonBody(*env.out, reply.body);
  }
}

// Reports the end of a wait and returns the exit code.
int FinishWait(const ClientEnvironment& env, const SystemsFlags& flags, const WaitSpec& spec,
               const WaitResult& result) {
  if (flags.json()) {
    PrintJsonBody(*env.out, result.system_body);
  } else if (result.system.is_object()) {
    PrintSystemSummary(result.system.as_object(), *env.out);
  }

  std::ostream& err = *env.err;
  switch (result.outcome) {
    case WaitOutcome::kReached: return kExitOk;
    case WaitOutcome::kFailed:
      err << "puddle: system " << spec.system_id << " failed; its events above say why\n";
      return kExitWaitFailed;
    case WaitOutcome::kElsewhere:
      err << "puddle: system " << spec.system_id << " is " << result.status << ", so it will "
          << "not become " << spec.target_status << "\n";
      return kExitWaitFailed;
    case WaitOutcome::kTimedOut:
      err << "puddle: timed out after " << spec.timeout.count() << " s waiting for system "
          << spec.system_id << " to be " << spec.target_status << "; "
          << (result.status.empty() ? "its status could not be read" : "it is " + result.status)
          << "\n";
      return kExitWaitFailed;
  }
  return kExitError;
}

int Wait(const ClientEnvironment& env, const SystemsFlags& flags, ApiClient& client,
         const WaitSpec& spec) {
  *env.err << "Waiting up to " << spec.timeout.count() << " s for system " << spec.system_id
           << " to be " << spec.target_status << "...\n";
  auto result = WaitForStatus(client, spec, *env.clock, env.sleep, *env.err);
  if (!result) {
    PrintError(*env.err, result.error());
    return kExitError;
  }
  return FinishWait(env, flags, spec, *result);
}

int RunList(const ClientEnvironment& env, const SystemsFlags& flags, const ListFlags& list) {
  auto client = ConnectWithApiKey(env, flags.connection);
  if (!client) return kExitError;

  std::string query = "?limit=" + std::to_string(kListPageSize);
  if (!list.all) query += "&owner=" + UrlEncode(list.owner.empty() ? "me" : list.owner);
  if (!list.status.empty()) query += "&status=" + UrlEncode(list.status);

  // Follow the cursor so the output contains every match, not the first page.
  boost::json::array items;
  std::string first_body;
  int pages = 0;
  std::optional<std::string> cursor;
  do {
    std::string target = "/api/v1/systems" + query;
    if (cursor) target += "&cursor=" + UrlEncode(*cursor);
    auto reply = client->Get(target);
    if (!reply) {
      PrintError(*env.err, reply.error());
      return kExitError;
    }
    if (++pages == 1) first_body = reply->body;
    cursor.reset();
    if (reply->json.is_object()) {
      const boost::json::object& body = reply->json.as_object();
      if (const auto* page = body.if_contains("items"); page && page->is_array()) {
        for (const auto& item : page->as_array()) items.push_back(item);
      }
      if (const auto* next = body.if_contains("nextCursor"); next && next->is_string()) {
        cursor = std::string(next->as_string());
      }
    }
  } while (cursor);

  if (!flags.json()) {
    PrintSystemsTable(items, *env.out);
  } else if (pages == 1) {
    PrintJsonBody(*env.out, first_body);
  } else {
    // Several pages are merged into the shape of one complete page.
    PrintJsonBody(*env.out,
                  json::Serialize(boost::json::object{{"items", items}, {"nextCursor", nullptr}}));
  }
  return kExitOk;
}

int RunGet(const ClientEnvironment& env, const SystemsFlags& flags, const std::string& id) {
  auto client = ConnectWithApiKey(env, flags.connection);
  if (!client) return kExitError;
  auto reply = client->Get(SystemTarget(id));
  if (!reply) {
    PrintError(*env.err, reply.error());
    return kExitError;
  }
  PrintSystem(env, flags, *reply);
  return kExitOk;
}

int RunCreate(const ClientEnvironment& env, const SystemsFlags& flags, const CreateFlags& create,
              const WaitFlags& wait) {
  auto client = ConnectWithApiKey(env, flags.connection);
  if (!client) return kExitError;

  boost::json::object body{{"name", create.name},
                           {"product", create.product},
                           {"version", create.version},
                           {"systemType", create.system_type}};
  if (create.has_idle_timeout) body["idleTimeoutMinutes"] = create.idle_timeout_minutes;
  auto reply = client->Post("/api/v1/systems", json::Serialize(body));
  if (!reply) {
    PrintError(*env.err, reply.error());
    return kExitError;
  }
  if (!wait.wait) {
    PrintSystem(env, flags, *reply);
    return kExitOk;
  }

  std::string id;
  if (reply->json.is_object()) id = FieldText(reply->json.as_object(), "id");
  if (id.empty() || id == "-") {
    PrintError(*env.err, CommandError(ErrorCode::kInternal,
                                      "the server's reply to POST /api/v1/systems has no id"));
    return kExitError;
  }
  WaitSpec spec;
  spec.system_id = id;
  spec.target_status = "running";
  spec.timeout = std::chrono::seconds(wait.timeout_seconds);
  spec.end_at_other_settled_status = true;
  return Wait(env, flags, *client, spec);
}

int RunAction(const ClientEnvironment& env, const SystemsFlags& flags, const Action& action,
              const std::string& id, const WaitFlags& wait) {
  auto client = ConnectWithApiKey(env, flags.connection);
  if (!client) return kExitError;

  // Note where the system's events end now, so the wait shows only what this
  // action causes.
  std::optional<std::string> cursor;
  if (wait.wait) {
    auto latest = LatestEventsCursor(*client, id);
    if (!latest) {
      PrintError(*env.err, latest.error());
      return kExitError;
    }
    cursor = *latest;
  }

  const std::string name = action.name;
  auto reply = name == "delete" ? client->Delete(SystemTarget(id))
                                : client->Post(SystemTarget(id) + "/" + name);
  if (!reply) {
    PrintError(*env.err, reply.error().WithContext(name + " system " + id));
    return kExitError;
  }
  if (!wait.wait) {
    PrintSystem(env, flags, *reply);
    return kExitOk;
  }

  WaitSpec spec;
  spec.system_id = id;
  spec.target_status = action.final_status;
  spec.timeout = std::chrono::seconds(wait.timeout_seconds);
  spec.end_at_other_settled_status = true;
  spec.events_cursor = cursor;
  return Wait(env, flags, *client, spec);
}

int RunWait(const ClientEnvironment& env, const SystemsFlags& flags, const std::string& id,
            const std::string& status, int timeout_seconds) {
  auto client = ConnectWithApiKey(env, flags.connection);
  if (!client) return kExitError;
  auto cursor = LatestEventsCursor(*client, id);
  if (!cursor) {
    PrintError(*env.err, cursor.error());
    return kExitError;
  }
  WaitSpec spec;
  spec.system_id = id;
  spec.target_status = status;
  spec.timeout = std::chrono::seconds(timeout_seconds);
  spec.events_cursor = *cursor;
  return Wait(env, flags, *client, spec);
}

void AddList(CLI::App& systems, int& exit_code, std::shared_ptr<const ClientEnvironment> env,
             std::shared_ptr<SystemsFlags> flags) {
  auto list = std::make_shared<ListFlags>();
  CLI::App* command = systems.add_subcommand("list", "List your systems, or everyone's");
  CLI::Option* all =
      command->add_flag("--all", list->all, "every user's systems (admins; others see their own)");
  command->add_option("--owner", list->owner, "the systems of this user id (admins), or `me`")
      ->excludes(all);
  command->add_option("--status", list->status, "only systems with this status")
      ->check(StatusValidator());
  command->callback([env, flags, list, &exit_code] {
    RunCommand(*env, exit_code, [&] { return RunList(*env, *flags, *list); });
  });
}

void AddGet(CLI::App& systems, int& exit_code, std::shared_ptr<const ClientEnvironment> env,
            std::shared_ptr<SystemsFlags> flags) {
  auto id = std::make_shared<std::string>();
  CLI::App* command = systems.add_subcommand("get", "Show one system");
  command->add_option("id", *id, "system id")->required()->check(SystemIdValidator());
  command->callback([env, flags, id, &exit_code] {
    RunCommand(*env, exit_code, [&] { return RunGet(*env, *flags, *id); });
  });
}

void AddCreate(CLI::App& systems, int& exit_code, std::shared_ptr<const ClientEnvironment> env,
               std::shared_ptr<SystemsFlags> flags) {
  auto create = std::make_shared<CreateFlags>();
  auto wait = std::make_shared<WaitFlags>();
  CLI::App* command = systems.add_subcommand("create", "Create and start a system");
  command->add_option("--name", create->name, "system name, unique among your systems")->required();
  command->add_option("--product", create->product, "product id, such as jupyter")->required();
  command->add_option("--version", create->version, "product version, such as 6.4.12")->required();
  command->add_option("--system-type", create->system_type, "system type id, such as cpu-small")
      ->required();
  CLI::Option* idle = command->add_option(
      "--idle-timeout", create->idle_timeout_minutes,
      "minutes of inactivity before the system stops, one of the server's options; -1 = never");
  AddWaitOptions(*command, *wait, "running");
  command->callback([env, flags, create, wait, idle, &exit_code] {
    create->has_idle_timeout = idle->count() > 0;
    RunCommand(*env, exit_code, [&] { return RunCreate(*env, *flags, *create, *wait); });
  });
}

void AddAction(CLI::App& systems, int& exit_code, std::shared_ptr<const ClientEnvironment> env,
               std::shared_ptr<SystemsFlags> flags, const Action& action) {
  auto id = std::make_shared<std::string>();
  auto wait = std::make_shared<WaitFlags>();
  CLI::App* command = systems.add_subcommand(action.name, action.description);
  command->add_option("id", *id, "system id")->required()->check(SystemIdValidator());
  AddWaitOptions(*command, *wait, action.final_status);
  command->callback([env, flags, id, wait, &action, &exit_code] {
    RunCommand(*env, exit_code, [&] { return RunAction(*env, *flags, action, *id, *wait); });
  });
}

void AddWait(CLI::App& systems, int& exit_code, std::shared_ptr<const ClientEnvironment> env,
             std::shared_ptr<SystemsFlags> flags) {
  struct Args {
    std::string id;
    std::string status;
    int timeout_seconds = kDefaultWaitSeconds;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command =
      systems.add_subcommand("wait", "Wait until a system has a status, printing its events");
  command->add_option("id", args->id, "system id")->required()->check(SystemIdValidator());
  command->add_option("--status", args->status, "the status to wait for")
      ->required()
      ->check(StatusValidator());
  command
      ->add_option("--timeout", args->timeout_seconds,
                   "seconds to wait before giving up with exit code 3")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxWaitSeconds));
  command->callback([env, flags, args, &exit_code] {
    RunCommand(*env, exit_code, [&] {
      return RunWait(*env, *flags, args->id, args->status, args->timeout_seconds);
    });
  });
}

}  // namespace

void AddSystemsCommands(CLI::App& app, int& exit_code,
                        std::shared_ptr<const ClientEnvironment> env) {
  auto flags = std::make_shared<SystemsFlags>();
  CLI::App* systems = app.add_subcommand("systems", "Manage systems on the Puddle server");
  systems->require_subcommand(1);
  // Subcommands pass options they do not know to `systems`, so the options
  // below work before or after the subcommand's name.
  systems->fallthrough();
  AddConnectionOptions(*systems, flags->connection);
  systems
      ->add_option("--output,-o", flags->output,
                   "`table` (readable) or `json` (the API's reply body unchanged)")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json"}));

  AddList(*systems, exit_code, env, flags);
  AddGet(*systems, exit_code, env, flags);
  AddCreate(*systems, exit_code, env, flags);
  for (const Action& action : kActions) AddAction(*systems, exit_code, env, flags, action);
  AddWait(*systems, exit_code, env, flags);
}

}  // namespace puddle::cli
