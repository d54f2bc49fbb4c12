// Routes under /api/v1/systems.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "api/handler_support.h"
#include "api/handlers/routes.h"
#include "api/render.h"
#include "common/json.h"

namespace puddle::api {
namespace {

Result<CreateSystemRequest> ReadCreate(const boost::json::object& body) {
  PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(
      body, {"name", "product", "version", "systemType", "idleTimeoutMinutes"}));
  CreateSystemRequest request;
  PUDDLE_ASSIGN_OR_RETURN(request.name, json::RequiredString(body, "name"));
  PUDDLE_ASSIGN_OR_RETURN(request.product, json::RequiredString(body, "product"));
  PUDDLE_ASSIGN_OR_RETURN(request.version, json::RequiredString(body, "version"));
  PUDDLE_ASSIGN_OR_RETURN(request.system_type, json::RequiredString(body, "systemType"));
  PUDDLE_ASSIGN_OR_RETURN(request.idle_timeout_minutes, json::OptionalInt(body, "idleTimeoutMinutes"));
  return request;
}

Result<SystemFilter> ReadFilter(const RequestContext& context) {
  SystemFilter filter;
  const Actor& actor = ActorOf(context);
  if (auto owner = QueryValue(context, "owner")) {
    filter.owner_id = *owner == "me" ? actor.user_id : *owner;
  }
  if (auto status = QueryValue(context, "status")) {
    auto parsed = ParseSystemStatus(*status);
    if (!parsed) {
      return MakeError(ErrorCode::kValidationFailed, "status \"" + *status + "\" is not a system status",
                       "query.status");
    }
    filter.status = parsed;
  }
  filter.product = QueryValue(context, "product");
  filter.system_type = QueryValue(context, "systemType");
  if (auto sort = QueryValue(context, "sort")) {
    static const char* kSorts[] = {"createdAt", "-createdAt", "name", "-name", "status", "-status"};
    bool known = false;
    for (const char* candidate : kSorts) known = known || *sort == candidate;
    if (!known) {
      return MakeError(ErrorCode::kValidationFailed,
                       "sort must be one of createdAt, -createdAt, name, -name, status, -status",
                       "query.sort");
    }
    filter.sort = *sort;
  }
  return filter;
}

// Events are paged by their sequence number; the cursor is that number.
Result<int64_t> ParseEventCursor(const std::string& text, const std::string& field) {
  if (text.empty()) return 0;
  if (text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
    return MakeError(ErrorCode::kValidationFailed, "cursor is not one this server returned", field);
  }
  return std::stoll(text);
}

// Returns a function that authenticates afresh the credential `context`'s
// request came with (its session cookie or its header token, as
// Api::Authenticate read it), so a long-lived response sees its user's
// current role and ends with a revoked credential or a disabled user.
std::function<Result<Actor>()> Reauthenticator(AuthService& auth, const RequestContext& context) {
  if (context.cookie_session) {
    std::string session_hash = ActorOf(context).session_hash;
    return [&auth, session_hash] { return auth.AuthenticateSessionHash(session_hash); };
  }
  const http::Request& request = context.request;
  std::string token(request.Header("x-puddle-token"));
  std::string_view authorization = request.Header("authorization");
  if (token.empty() && authorization.size() > 7 &&
      (authorization.substr(0, 7) == "Bearer " || authorization.substr(0, 7) == "bearer ")) {
    token = std::string(authorization.substr(7));
  }
  return [&auth, token] { return auth.AuthenticateToken(token); };
}

std::string EventStreamChunk(const Event& event) {
  return "id: " + std::to_string(event.sequence) + "\nevent: event\ndata: " +
         boost::json::serialize(EventJson(event)) + "\n\n";
}

// Each open stream occupies a handler thread, so their number is capped, in
// all and per user, so that one user cannot take every stream.
constexpr int kMaxEventStreams = 8;
constexpr int kMaxEventStreamsPerUser = 2;
std::mutex event_streams_mutex;
int open_event_streams = 0;
std::map<std::string, int> open_event_streams_by_user;

// One open stream, counted for as long as the server keeps its body function.
class EventStreamSlot {
 public:
  // Takes a slot for `user_id`, or returns null when a cap is reached.
  static std::shared_ptr<EventStreamSlot> Take(const std::string& user_id) {
    std::lock_guard lock(event_streams_mutex);
    int& mine = open_event_streams_by_user[user_id];
    if (open_event_streams >= kMaxEventStreams || mine >= kMaxEventStreamsPerUser) {
      if (mine == 0) open_event_streams_by_user.erase(user_id);
      return nullptr;
    }
    ++open_event_streams;
    ++mine;
    return std::shared_ptr<EventStreamSlot>(new EventStreamSlot(user_id));
  }
  ~EventStreamSlot() {
    std::lock_guard lock(event_streams_mutex);
    --open_event_streams;
    if (--open_event_streams_by_user[user_id_] == 0) open_event_streams_by_user.erase(user_id_);
  }
  EventStreamSlot(const EventStreamSlot&) = delete;
  EventStreamSlot& operator=(const EventStreamSlot&) = delete;

 private:
  explicit EventStreamSlot(std::string user_id) : user_id_(std::move(user_id)) {}
  std::string user_id_;
};

// Streams the events of system `id` after sequence `after`. Each pull calls
// `reauthenticate` and reads the events as the actor it returns, so the
// stream ends within about a second of its user losing access to the system.
// That costs one credential read per pull (about two a second per idle
// stream), and streams are few (capped).
Result<http::Response> EventStream(SystemService& systems, const Actor& actor,
                                   std::function<Result<Actor>()> reauthenticate,
                                   const std::string& id, int64_t after) {
  auto slot = EventStreamSlot::Take(actor.user_id);
  if (!slot) {
    Error error;
    error.code = ErrorCode::kRateLimited;
    error.message = "too many event streams are open (at most " +
                    std::to_string(kMaxEventStreamsPerUser) + " per user and " +
                    std::to_string(kMaxEventStreams) +
                    " in all); poll the events list instead, or retry";
    error.retry_after_seconds = 5;
    return tl::unexpected(error);
  }
  http::Response response;
  response.status = 200;
  response.SetHeader("content-type", "text/event-stream");
  response.SetHeader("cache-control", "no-store");
  auto cursor = std::make_shared<int64_t>(after);
  response.stream = [&systems, reauthenticate = std::move(reauthenticate), id, cursor,
                     slot]() -> std::optional<std::string> {
    auto current = reauthenticate();
    if (!current) return std::nullopt;  // signed out, credential revoked or user disabled
    auto events = systems.Events(*current, id, *cursor, 100);
    if (!events) return std::nullopt;  // access lost or system gone
    if (events->empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      return std::string();
    }
    std::string chunk;
    for (const auto& event : *events) {
      chunk += EventStreamChunk(event);
      *cursor = event.sequence;
    }
    return chunk;
  };
  return response;
}

http::Response Accepted(const SystemView& view, const Actor& actor) {
  return JsonReply(202, SystemJson(view, actor));
}

void AddAction(Router& router, ApiDependencies& deps, const std::string& name,
               OperationAction action, const std::string& summary) {
  router.Add({"POST", "/api/v1/systems/{id}/" + name, Access::kSignedIn,
              [&deps, action](RequestContext& context) -> Result<http::Response> {
                std::optional<int64_t> minutes;
                if (!context.request.body.empty()) {
                  PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                  if (action == OperationAction::kKeepAlive) {
                    PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {"minutes"}));
                    PUDDLE_ASSIGN_OR_RETURN(minutes, json::OptionalInt(body, "minutes"));
                  } else {
                    PUDDLE_RETURN_IF_ERROR(json::RejectUnknownFields(body, {}));
                  }
                }
                const Actor& actor = ActorOf(context);
                PUDDLE_ASSIGN_OR_RETURN(
                    auto view, deps.systems.Request(actor, context.params.at("id"), action, minutes));
                return Accepted(view, actor);
              },
              {summary, "systems", 202, action == OperationAction::kKeepAlive ? "KeepAlive" : "",
               "System"}});
}

}  // namespace

void AddSystemRoutes(Router& router, ApiDependencies& deps) {
  router.Add({"POST", "/api/v1/systems", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_ASSIGN_OR_RETURN(auto body, ParseBody(context));
                PUDDLE_ASSIGN_OR_RETURN(auto request, ReadCreate(body));
                const Actor& actor = ActorOf(context);
                PUDDLE_ASSIGN_OR_RETURN(auto view, deps.systems.Create(actor, request));
                auto response = JsonReply(201, SystemJson(view, actor));
                response.SetHeader("location", "/api/v1/systems/" + view.system.id);
                return response;
              },
              {"Create a system; it starts queued", "systems", 201, "SystemCreate", "System"}});

  router.Add({"GET", "/api/v1/systems", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(
                    context, {"limit", "cursor", "owner", "status", "product", "systemType", "sort"}));
                PUDDLE_ASSIGN_OR_RETURN(auto page, ParsePage(context));
                PUDDLE_ASSIGN_OR_RETURN(auto filter, ReadFilter(context));
                const Actor& actor = ActorOf(context);
                PUDDLE_ASSIGN_OR_RETURN(auto systems, deps.systems.List(actor, filter, page));
                boost::json::array items;
                for (const auto& view : systems.items) items.push_back(SystemJson(view, actor));
                return JsonReply(200, ListJson(std::move(items), systems.next_cursor));
              },
              {"List your systems (admins: everyone's)", "systems", 200, "", "SystemList",
               {"limit", "cursor", "owner", "status", "product", "systemType", "sort"}}});

  router.Add({"GET", "/api/v1/systems/{id}", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                const Actor& actor = ActorOf(context);
                PUDDLE_ASSIGN_OR_RETURN(auto view, deps.systems.Get(actor, context.params.at("id")));
                return JsonReply(200, SystemJson(view, actor));
              },
              {"Get a system", "systems", 200, "", "System"}});

  AddAction(router, deps, "start", OperationAction::kStart, "Start a stopped or failed system");
  AddAction(router, deps, "stop", OperationAction::kStop, "Stop a system, keeping its files");
  AddAction(router, deps, "reboot", OperationAction::kReboot, "Restart a running system");
  AddAction(router, deps, "keep-alive", OperationAction::kKeepAlive,
            "Postpone a pending idle or max-uptime stop");
  AddAction(router, deps, "restart-product", OperationAction::kRestartProduct,
            "Restart the product without touching the machine (admins)");
  AddAction(router, deps, "fail", OperationAction::kFail,
            "Mark a system failed, cancelling the job under way (admins)");

  router.Add({"DELETE", "/api/v1/systems/{id}", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                const Actor& actor = ActorOf(context);
                PUDDLE_ASSIGN_OR_RETURN(auto view, deps.systems.Request(actor, context.params.at("id"),
                                                                        OperationAction::kDelete));
                return Accepted(view, actor);
              },
              {"Delete a system and its files", "systems", 202, "", "System"}});

  router.Add({"GET", "/api/v1/systems/{id}/events", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto page, ParsePage(context));
                const Actor& actor = ActorOf(context);
                const std::string& id = context.params.at("id");
                PUDDLE_ASSIGN_OR_RETURN(int64_t after, ParseEventCursor(page.cursor, "query.cursor"));

                std::string_view accept = context.request.Header("accept");
                if (accept.find("text/event-stream") != std::string_view::npos) {
                  std::string last(context.request.Header("last-event-id"));
                  if (!last.empty()) {
                    PUDDLE_ASSIGN_OR_RETURN(after, ParseEventCursor(last, "Last-Event-ID"));
                  }
                  PUDDLE_RETURN_IF_ERROR(deps.systems.Events(actor, id, after, 1));
                  return EventStream(deps.systems, actor, Reauthenticator(deps.auth, context), id,
                                     after);
                }

                PUDDLE_ASSIGN_OR_RETURN(auto events, deps.systems.Events(actor, id, after, page.limit));
                boost::json::array items;
                for (const auto& event : events) {
                  items.push_back(EventJson(event));
                  after = event.sequence;
                }
                return JsonReply(200, ListJson(std::move(items), std::to_string(after)));
              },
              {"Progress events, oldest first; also as Server-Sent Events", "systems", 200, "",
               "EventList", {"limit", "cursor"}}});

  router.Add({"GET", "/api/v1/systems/{id}/operations", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto page, ParsePage(context));
                PUDDLE_ASSIGN_OR_RETURN(auto operations, deps.systems.Operations(
                                                             ActorOf(context), context.params.at("id"), page));
                boost::json::array items;
                for (const auto& operation : operations.items) items.push_back(OperationJson(operation));
                return JsonReply(200, ListJson(std::move(items), operations.next_cursor));
              },
              {"Requests made of a system, newest first", "systems", 200, "", "OperationList",
               {"limit", "cursor"}}});

  router.Add({"GET", "/api/v1/systems/{id}/sessions", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"limit", "cursor"}));
                PUDDLE_ASSIGN_OR_RETURN(auto sessions,
                                        deps.systems.Sessions(ActorOf(context), context.params.at("id")));
                TimePoint now = deps.store.clock().Now();
                boost::json::array items;
                for (const auto& session : sessions) items.push_back(CostSessionJson(session, now));
                return JsonReply(200, ListJson(std::move(items), ""));
              },
              {"Cost sessions: the spans a system was running", "systems", 200, "", "SessionList"}});

  router.Add({"GET", "/api/v1/systems/{id}/logs", Access::kSignedIn,
              [&deps](RequestContext& context) -> Result<http::Response> {
                PUDDLE_RETURN_IF_ERROR(CheckQuery(context, {"tail"}));
                int tail = 200;
                if (auto text = QueryValue(context, "tail")) {
                  bool digits = !text->empty() && text->size() <= 5 &&
                                text->find_first_not_of("0123456789") == std::string::npos;
                  tail = digits ? std::stoi(*text) : 0;
                  if (tail < 1 || tail > 10000) {
                    return MakeError(ErrorCode::kValidationFailed,
                                     "tail must be an integer from 1 to 10000", "query.tail");
                  }
                }
                PUDDLE_ASSIGN_OR_RETURN(auto logs,
                                        deps.systems.Logs(ActorOf(context), context.params.at("id"), tail));
                http::Response response;
                response.SetHeader("content-type", "text/plain; charset=utf-8");
                response.body = std::move(logs);
                return response;
              },
              {"The product's recent output", "systems", 200, "", "", {"tail"}}});
}

}  // namespace puddle::api
