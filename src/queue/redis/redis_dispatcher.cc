#include "queue/redis/redis_dispatcher.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <string_view>

#include "common/log.h"

namespace puddle {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// XADD trims the stream to about this many entries ("MAXLEN ~"), so it stays
// small whether or not anyone reads it.
constexpr const char* kStreamMaxLength = "10000";
constexpr milliseconds kMaxWait = std::chrono::hours(24);
constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{5000};
// Rate-limited warnings of one kind are logged at most once per this interval.
constexpr auto kLogInterval = std::chrono::seconds(30);

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// Sends one command with binary-safe arguments. Returns nullptr on an I/O or
// protocol error, which hiredis records in context->err and context->errstr.
ReplyPtr RunCommand(redisContext* context, std::initializer_list<std::string_view> args) {
  std::vector<const char*> values;
  std::vector<size_t> lengths;
  for (std::string_view arg : args) {
    values.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(values.size()), values.data(), lengths.data())));
}

std::string ReplyText(const redisReply* reply) {
  return reply->str != nullptr ? std::string(reply->str, reply->len) : std::string();
}

timeval ToTimeval(milliseconds duration) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(duration.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return value;
}

// Delay before the next connection attempt after `failures` consecutive
// failures. The first retry after a lost connection is immediate, because a
// connection that went stale while Redis restarted fails once and then works.
milliseconds BackoffAfter(int failures) {
  if (failures <= 1) return milliseconds(0);
  int shift = std::min(failures - 2, 16);
  return std::min<milliseconds>(kFirstBackoff * (int64_t{1} << shift), kMaxBackoff);
}

// Allows one log line per kLogInterval. Returns true when the caller may log,
// with `held_back` set to how many lines were skipped since the last one.
bool ShouldLog(steady_clock::time_point& last_logged, int64_t& skipped, int64_t& held_back) {
  auto now = steady_clock::now();
  if (last_logged != steady_clock::time_point() && now - last_logged < kLogInterval) {
    ++skipped;
    return false;
  }
  last_logged = now;
  held_back = skipped;
  skipped = 0;
  return true;
}

// hiredis 0.14 writes with write(2), so writing to a connection that Redis
// closed raises SIGPIPE, whose default action ends the process.
void IgnoreSigpipeIfDefault() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
}

tl::unexpected<Error> InvalidAddress(const std::string& address, const std::string& reason) {
  return MakeError(ErrorCode::kValidationFailed,
                   "Redis address '" + address + "' is invalid: " + reason +
                       "; use host:port, such as 127.0.0.1:6379, or [IPv6 address]:port");
}

// Splits "host:port" or "[IPv6 address]:port".
Status ParseTcpAddress(const std::string& address, std::string& host, int& port) {
  std::string port_text;
  if (address.starts_with('[')) {
    auto bracket = address.find(']');
    if (bracket == std::string::npos || bracket + 1 >= address.size() ||
        address[bracket + 1] != ':') {
      return InvalidAddress(address, "no ']:' after the IPv6 address");
    }
    host = address.substr(1, bracket - 1);
    port_text = address.substr(bracket + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) return InvalidAddress(address, "no port");
    host = address.substr(0, colon);
    if (host.find(':') != std::string::npos) {
      return InvalidAddress(address, "an IPv6 address needs brackets");
    }
    port_text = address.substr(colon + 1);
  }
  if (host.empty()) return InvalidAddress(address, "no host");

  const char* end = port_text.data() + port_text.size();
  auto parsed = std::from_chars(port_text.data(), end, port);
  if (port_text.empty() || parsed.ec != std::errc() || parsed.ptr != end || port < 1 ||
      port > 65535) {
    return InvalidAddress(address, "the port is not a number from 1 to 65535");
  }
  return Ok();
}

Status ValidateOptions(const RedisOptions& options) {
  if (options.tls) {
    return MakeError(ErrorCode::kValidationFailed,
                     "Redis TLS is not supported: the hiredis 0.14 client library has no TLS. "
                     "Set tls to false and keep Redis on a private network or on loopback");
  }
  if (options.protocol != "tcp" && options.protocol != "unix") {
    return MakeError(ErrorCode::kValidationFailed,
                     "Redis protocol '" + options.protocol + "' is not supported; use tcp or unix");
  }
  if (options.address.empty()) {
    return MakeError(ErrorCode::kValidationFailed,
                     "Redis address is empty; set host:port for tcp or a socket path for unix");
  }
  if (options.stream.empty() || options.group.empty()) {
    return MakeError(ErrorCode::kValidationFailed, "Redis stream and group names must not be empty");
  }
  if (options.connect_timeout_ms <= 0) {
    return MakeError(ErrorCode::kValidationFailed,
                     "Redis connect timeout must be positive, got " +
                         std::to_string(options.connect_timeout_ms) + " ms");
  }
  return Ok();
}

std::string DefaultConsumerName() {
  char host[256] = {};
  std::string name = "puddle";
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') name = host;
  return name + "-" + std::to_string(getpid());
}

// Returns the id of the entry in a one-entry XREADGROUP reply, shaped
// [[stream, [[id, [field, value, ...]]]]], and its job id; "" when malformed.
std::string EntryId(const redisReply* reply, std::string& job_id) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) return "";
  const redisReply* stream = reply->element[0];
  if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) return "";
  const redisReply* entries = stream->element[1];
  if (entries->type != REDIS_REPLY_ARRAY || entries->elements < 1) return "";
  const redisReply* entry = entries->element[0];
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 ||
      entry->element[0]->type != REDIS_REPLY_STRING) {
    return "";
  }
  if (entry->elements >= 2 && entry->element[1]->type == REDIS_REPLY_ARRAY &&
      entry->element[1]->elements >= 2 && entry->element[1]->element[1]->type == REDIS_REPLY_STRING) {
    job_id = ReplyText(entry->element[1]->element[1]);
  }
  return ReplyText(entry->element[0]);
}

}  // namespace

void RedisDispatcher::ContextDeleter::operator()(redisContext* context) const {
  redisFree(context);
}

RedisDispatcher::RedisDispatcher(RedisOptions options, std::string host, int port)
    : options_(std::move(options)), host_(std::move(host)), port_(port) {}

Result<std::unique_ptr<RedisDispatcher>> RedisDispatcher::Open(const RedisOptions& options) {
  PUDDLE_RETURN_IF_ERROR(ValidateOptions(options));
  std::string host;
  int port = 0;
  if (options.protocol == "tcp") PUDDLE_RETURN_IF_ERROR(ParseTcpAddress(options.address, host, port));
  IgnoreSigpipeIfDefault();

  RedisOptions resolved = options;
  if (resolved.consumer.empty()) resolved.consumer = DefaultConsumerName();
  std::unique_ptr<RedisDispatcher> dispatcher(
      new RedisDispatcher(std::move(resolved), std::move(host), port));

  // The first connection checks the address and the password, and becomes
  // the publishing connection.
  PUDDLE_ASSIGN_OR_RETURN(ContextPtr context, dispatcher->Connect());
  PUDDLE_RETURN_IF_ERROR(dispatcher->CreateGroup(context.get()));
  dispatcher->publish_context_ = std::move(context);

  log::Info("Redis dispatcher ready", {{"address", dispatcher->Where()},
                                       {"stream", dispatcher->options_.stream},
                                       {"group", dispatcher->options_.group},
                                       {"consumer", dispatcher->options_.consumer}});
  return dispatcher;
}

RedisDispatcher::~RedisDispatcher() { Close(); }

std::string RedisDispatcher::Where() const {
  if (options_.protocol == "unix") return "unix socket " + options_.address;
  return options_.address;
}

std::string RedisDispatcher::Redact(std::string text) const {
  if (options_.password.empty()) return text;
  for (auto at = text.find(options_.password); at != std::string::npos;
       at = text.find(options_.password, at)) {
    text.replace(at, options_.password.size(), "[password]");
    at += 10;
  }
  return text;
}

Result<RedisDispatcher::ContextPtr> RedisDispatcher::Connect() const {
  timeval timeout = ToTimeval(milliseconds(options_.connect_timeout_ms));
  ContextPtr context(options_.protocol == "unix"
                         ? redisConnectUnixWithTimeout(options_.address.c_str(), timeout)
                         : redisConnectWithTimeout(host_.c_str(), port_, timeout));
  if (!context) {
    return MakeError(ErrorCode::kUnavailable,
                     "connecting to Redis at " + Where() + " failed: out of memory");
  }
  if (context->err != 0) {
    return MakeError(ErrorCode::kUnavailable,
                     "connecting to Redis at " + Where() + " failed: " + context->errstr +
                         "; check that Redis runs at this address and accepts connections "
                         "from this host");
  }
  if (redisSetTimeout(context.get(), timeout) != REDIS_OK) {
    return MakeError(ErrorCode::kUnavailable, "setting the socket timeout for Redis at " +
                                                  Where() + " failed: " + context->errstr);
  }

  // Without a password, PING finds out whether Redis demands one.
  bool has_password = !options_.password.empty();
  ReplyPtr reply = has_password ? RunCommand(context.get(), {"AUTH", options_.password})
                                : RunCommand(context.get(), {"PING"});
  const char* command = has_password ? "AUTH" : "PING";
  if (!reply) {
    return MakeError(ErrorCode::kUnavailable, std::string(command) + " to Redis at " + Where() +
                                                  " failed: " + Redact(context->errstr));
  }
  if (reply->type != REDIS_REPLY_ERROR) return context;

  std::string text = Redact(ReplyText(reply.get()));
  if (!has_password && text.starts_with("NOAUTH")) {
    return MakeError(ErrorCode::kUnauthenticated,
                     "Redis at " + Where() + " requires a password: " + text +
                         "; set the Redis password in the configuration");
  }
  if (has_password && (text.starts_with("WRONGPASS") || text.starts_with("ERR invalid password") ||
                       text.starts_with("ERR AUTH") || text.starts_with("ERR Client sent AUTH"))) {
    return MakeError(ErrorCode::kUnauthenticated,
                     "Redis at " + Where() + " rejected the password: " + text +
                         "; check the Redis password in the configuration");
  }
  return MakeError(ErrorCode::kUnavailable,
                   std::string(command) + " to Redis at " + Where() + " failed: " + text);
}

Status RedisDispatcher::CreateGroup(redisContext* context) const {
  // The group starts at id 0, not $, so it also delivers entries already in
  // the stream. After FLUSHALL the next XADD recreates the stream before any
  // waiter recreates the group, and $ would skip that entry. An existing
  // group (BUSYGROUP) is left as it is.
  ReplyPtr reply = RunCommand(
      context, {"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  std::string what = "creating consumer group '" + options_.group + "' on stream '" +
                     options_.stream + "' at Redis " + Where();
  if (!reply) {
    return MakeError(ErrorCode::kUnavailable, what + " failed: " + Redact(context->errstr));
  }
  if (reply->type != REDIS_REPLY_ERROR) return Ok();

  std::string text = Redact(ReplyText(reply.get()));
  if (text.starts_with("BUSYGROUP")) return Ok();
  // NOTE: untested, because only Redis 7.0 is installed here.
  if (text.find("unknown command") != std::string::npos ||
      text.find("unknown subcommand") != std::string::npos) {
    return MakeError(ErrorCode::kUnavailable,
                     what + " failed: " + text +
                         "; this Redis has no streams, which need Redis 5.0 or later");
  }
  if (text.starts_with("WRONGTYPE")) {
    return MakeError(ErrorCode::kUnavailable,
                     what + " failed: key '" + options_.stream +
                         "' holds a value that is not a stream; delete the key or choose another "
                         "stream name");
  }
  return MakeError(ErrorCode::kUnavailable, what + " failed: " + text);
}

void RedisDispatcher::Publish(const std::string& job_id) {
  std::lock_guard lock(publish_mutex_);
  std::string error;
  // A connection that went stale while Redis restarted fails its first
  // command, so one failed XADD is retried on a new connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!publish_context_) {
      auto connected = ConnectUnlessBackingOff();
      if (!connected) {
        error = connected.error().message;
        break;
      }
      publish_context_ = std::move(*connected);
    }

    ReplyPtr reply = RunCommand(publish_context_.get(), {"XADD", options_.stream, "MAXLEN", "~",
                                                         kStreamMaxLength, "*", "job_id", job_id});
    if (reply && reply->type != REDIS_REPLY_ERROR) {
      RecordReply();
      return;
    }
    if (reply) {
      // Redis replied with an error (out of memory, wrong key type), which the
      // same XADD would get again.
      error = "XADD failed: " + Redact(ReplyText(reply.get()));
      break;
    }
    error = "XADD failed: " + Redact(publish_context_->errstr);
    publish_context_.reset();
    RecordFailure(error);
  }
  LogPublishFailure(job_id, error);
}

void RedisDispatcher::LogPublishFailure(const std::string& job_id, const std::string& error) {
  int64_t held_back = 0;
  if (!ShouldLog(last_publish_log_, unlogged_publish_failures_, held_back)) return;
  log::Warning("job wake-up not published to Redis; workers find the job by polling the database",
               {{"job_id", job_id},
                {"address", Where()},
                {"error", error},
                {"suppressed", std::to_string(held_back)}});
}

void RedisDispatcher::WaitForWork(milliseconds timeout) {
  if (timeout <= milliseconds(0)) return;
  // The cap keeps the deadline from overflowing. Returning early is allowed,
  // because a return only means that a job may be available.
  const auto deadline = steady_clock::now() + std::min<milliseconds>(timeout, kMaxWait);
  while (true) {
    ContextPtr context = LeaseWaiterContext();
    if (!context) {
      if (WaitToRetry(deadline)) continue;
      return;
    }
    auto remaining = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (remaining < milliseconds(1)) {
      // BLOCK 0 would block without a limit.
      ReturnWaiterContext(std::move(context), true);
      return;
    }

    ReadOutcome outcome = ReadOneEntry(context.get(), remaining);
    bool healthy = context->err == 0;
    std::string io_error = healthy ? "" : Redact(context->errstr);
    ReturnWaiterContext(std::move(context), healthy);
    if (IsClosed()) return;
    if (!healthy) RecordFailure("waiting for jobs on Redis failed: " + io_error);

    switch (outcome) {
      case ReadOutcome::kWoken:
      case ReadOutcome::kTimedOut:
        return;
      case ReadOutcome::kGroupRecreated:
      case ReadOutcome::kConnectionLost:
        continue;
      case ReadOutcome::kFailed: {
        // Redis replied with an error that a retry would get again at once,
        // so the rest of the wait is a plain timeout.
        std::unique_lock lock(mutex_);
        retry_wake_.wait_until(lock, deadline, [this] { return closed_; });
        return;
      }
    }
  }
}

RedisDispatcher::ReadOutcome RedisDispatcher::ReadOneEntry(redisContext* context,
                                                           milliseconds block) {
  // The socket timeout outlasts BLOCK, so only a connection that went silent
  // times out.
  redisSetTimeout(context, ToTimeval(block + milliseconds(options_.connect_timeout_ms)));
  ReplyPtr reply =
      RunCommand(context, {"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", "1",
                           "BLOCK", std::to_string(block.count()), "STREAMS", options_.stream, ">"});
  if (!reply) return ReadOutcome::kConnectionLost;
  redisSetTimeout(context, ToTimeval(milliseconds(options_.connect_timeout_ms)));
  RecordReply();

  if (reply->type == REDIS_REPLY_NIL) return ReadOutcome::kTimedOut;
  if (reply->type == REDIS_REPLY_ERROR) {
    std::string text = Redact(ReplyText(reply.get()));
    // Redis 7.0 replies to a blocked reader with UNBLOCKED when the stream is
    // deleted (FLUSHALL) and with NOGROUP when only the group is. Either way
    // the group is created again and the wait goes on.
    if (text.starts_with("NOGROUP") || text.starts_with("UNBLOCKED")) {
      log::Warning("Redis consumer group missing, recreating it",
                   {{"address", Where()}, {"stream", options_.stream}, {"group", options_.group},
                    {"error", text}});
      auto created = CreateGroup(context);
      if (created) return ReadOutcome::kGroupRecreated;
      text = created.error().message;
    }
    std::lock_guard lock(mutex_);
    int64_t held_back = 0;
    if (ShouldLog(last_failure_log_, unlogged_failures_, held_back)) {
      log::Warning("waiting for jobs on Redis failed; workers poll the database",
                   {{"address", Where()}, {"error", text}, {"suppressed", std::to_string(held_back)}});
    }
    return context->err != 0 ? ReadOutcome::kConnectionLost : ReadOutcome::kFailed;
  }

  std::string job_id;
  std::string entry_id = EntryId(reply.get(), job_id);
  if (!entry_id.empty()) {
    // Acknowledging keeps the group's pending list empty. A failed XACK only
    // leaves one entry pending, so its reply is not checked.
    RunCommand(context, {"XACK", options_.stream, options_.group, entry_id});
    log::Debug("job wake-up received from Redis", {{"job_id", job_id}, {"entry", entry_id}});
  }
  return ReadOutcome::kWoken;
}

RedisDispatcher::ContextPtr RedisDispatcher::LeaseWaiterContext() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return nullptr;
    if (!idle_contexts_.empty()) {
      ContextPtr context = std::move(idle_contexts_.back());
      idle_contexts_.pop_back();
      leased_contexts_.insert(context.get());
      return context;
    }
  }

  auto connected = ConnectUnlessBackingOff();
  if (!connected) return nullptr;
  std::lock_guard lock(mutex_);
  // Registering under the lock that Close() takes means that either Close()
  // shuts this connection down or this thread reads closed_ as true.
  if (closed_) return nullptr;
  leased_contexts_.insert(connected->get());
  return std::move(*connected);
}

void RedisDispatcher::ReturnWaiterContext(ContextPtr context, bool healthy) {
  std::lock_guard lock(mutex_);
  leased_contexts_.erase(context.get());
  if (healthy && !closed_) idle_contexts_.push_back(std::move(context));
}

bool RedisDispatcher::WaitToRetry(steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  if (closed_) return false;
  retry_wake_.wait_until(lock, std::min(deadline, retry_at_), [this] { return closed_; });
  return !closed_ && steady_clock::now() < deadline;
}

Result<RedisDispatcher::ContextPtr> RedisDispatcher::ConnectUnlessBackingOff() {
  {
    std::lock_guard lock(mutex_);
    auto now = steady_clock::now();
    if (now < retry_at_) {
      auto wait = std::chrono::duration_cast<milliseconds>(retry_at_ - now);
      return MakeError(ErrorCode::kUnavailable, "Redis at " + Where() +
                                                    " is unavailable, next attempt in " +
                                                    std::to_string(wait.count()) + " ms");
    }
    // While Redis is failing, one caller per backoff period tries to connect.
    if (failures_ > 0) retry_at_ = now + std::max(kFirstBackoff, BackoffAfter(failures_ + 1));
  }

  auto connected = Connect();
  if (!connected) {
    RecordFailure(connected.error().message);
    return tl::unexpected(connected.error());
  }
  RecordConnected();
  return connected;
}

void RedisDispatcher::RecordFailure(const std::string& error) {
  std::lock_guard lock(mutex_);
  ++failures_;
  milliseconds delay = BackoffAfter(failures_);
  retry_at_ = steady_clock::now() + delay;
  if (failures_ == 1) {
    log::Warning("Redis connection lost; workers poll the database until it is back",
                 {{"address", Where()}, {"error", error}});
    return;
  }
  int64_t held_back = 0;
  if (ShouldLog(last_failure_log_, unlogged_failures_, held_back)) {
    log::Warning("Redis reconnect failed", {{"address", Where()},
                                            {"attempt", std::to_string(failures_)},
                                            {"retry_in_ms", std::to_string(delay.count())},
                                            {"error", error},
                                            {"suppressed", std::to_string(held_back)}});
  }
}

void RedisDispatcher::RecordConnected() {
  // Other callers may connect at once. failures_ is kept until a command gets
  // a reply, so a server that accepts connections and then drops them still
  // meets a growing backoff.
  std::lock_guard lock(mutex_);
  retry_at_ = steady_clock::time_point();
}

void RedisDispatcher::RecordReply() {
  std::lock_guard lock(mutex_);
  if (failures_ == 0) return;
  log::Info("Redis connection restored",
            {{"address", Where()}, {"failed_attempts", std::to_string(failures_)}});
  failures_ = 0;
  retry_at_ = steady_clock::time_point();
}

bool RedisDispatcher::IsClosed() {
  std::lock_guard lock(mutex_);
  return closed_;
}

void RedisDispatcher::Close() {
  std::vector<ContextPtr> idle;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    // shutdown(2), unlike close(2), leaves the descriptor to the waiter that
    // leased it: its blocked read returns at once, and it frees the context.
    for (redisContext* context : leased_contexts_) shutdown(context->fd, SHUT_RDWR);
    idle.swap(idle_contexts_);
  }
  retry_wake_.notify_all();
}

}  // namespace puddle
