// RedisDispatcher: wakes workers in every Puddle process that shares one Redis,
// through a Redis Stream read by one consumer group.
//
// Publish appends the job id to the stream (XADD, trimmed to about 10,000
// entries). Redis delivers each entry to one reader of the group, across all
// processes: WaitForWork reads one with XREADGROUP, acknowledges it (XACK) and
// returns. Redis carries only these wake-ups. A flush, a restart or a failed
// XADD loses wake-ups but never jobs, because the job rows in the database are
// the truth, workers also poll the database, and RepublishQueuedJobs re-sends
// the ids of queued jobs that no worker claimed.
//
// hiredis contexts are not thread-safe. Each thread inside WaitForWork leases a
// blocking connection of its own from a pool (so the pool grows to the number
// of threads that wait at once), and Publish uses one connection under a mutex.
// A lost connection is reconnected at once, then with a backoff from 100 ms that
// doubles up to 5 s. Meanwhile WaitForWork behaves as if it timed out and
// Publish drops the wake-up with a rate-limited warning. Thread-safe.
//
// Limitations: no TLS, because hiredis 0.14 has none. Streams need Redis 5.0
// or later. One Redis node only (no Sentinel or Cluster), and AUTH with a
// password but no ACL user name.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "queue/dispatcher.h"

struct redisContext;

namespace puddle {

struct RedisOptions {
  // "tcp" or "unix".
  std::string protocol = "tcp";
  // "host:port" or "[IPv6 address]:port" for tcp, a socket path for unix.
  std::string address;
  // Sent with AUTH when not empty. Never logged or put in an error message.
  std::string password;
  // Open rejects true: hiredis 0.14 has no TLS.
  bool tls = false;
  // Stream key that carries job ids.
  std::string stream = "puddle:jobs";
  // Consumer group that every Puddle process sharing the stream joins.
  std::string group = "puddle-workers";
  // This process's consumer name in the group; empty means "<hostname>-<pid>".
  std::string consumer;
  // Limit for connecting and for each command that does not block, in ms.
  int connect_timeout_ms = 2000;
};

class RedisDispatcher final : public Dispatcher {
 public:
  // Connects, sends AUTH when a password is set, and creates the stream and
  // the consumer group unless they exist. Fails without retrying when Redis is
  // unreachable, rejects the password or has no streams, with a message that
  // names the address. Ignores SIGPIPE process-wide when its disposition is
  // still the default, because hiredis writes with write(2) and a write to a
  // connection Redis closed would otherwise end the process.
  static Result<std::unique_ptr<RedisDispatcher>> Open(const RedisOptions& options);

  // REQUIRES: no thread is inside Publish or WaitForWork.
  ~RedisDispatcher() override;
  RedisDispatcher(const RedisDispatcher&) = delete;
  RedisDispatcher& operator=(const RedisDispatcher&) = delete;

  // Appends `job_id` to the stream. Returns without an error when Redis is
  // unavailable: the failure is logged (rate-limited) and the job waits for a
  // database poll or the sweeper. Keeps working after Close().
  void Publish(const std::string& job_id) override;

  // Blocks until this process receives a stream entry, `timeout` passes or
  // Close() is called. Reconnects and recreates a missing consumer group (after
  // FLUSHALL or a restart of Redis) within the same call.
  void WaitForWork(std::chrono::milliseconds timeout) override;

  // Wakes every waiter, shutting down the sockets of those blocked in Redis,
  // and makes later waits return at once. An entry that Redis delivered to a
  // waiter in that moment is lost, which the sweeper covers.
  void Close() override;

 private:
  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  enum class ReadOutcome { kWoken, kTimedOut, kGroupRecreated, kConnectionLost, kFailed };

  RedisDispatcher(RedisOptions options, std::string host, int port);

  // Connects a new context with timeouts set, and authenticates it.
  Result<ContextPtr> Connect() const;
  // Connect, unless the reconnect backoff has not passed yet.
  Result<ContextPtr> ConnectUnlessBackingOff();
  // Creates the stream and the group (at id 0, see the .cc) unless the group exists.
  Status CreateGroup(redisContext* context) const;

  // Returns an idle or new connection for one waiter, or nullptr when closed
  // or when no connection can be made now.
  ContextPtr LeaseWaiterContext();
  // Takes back a leased connection; keeps it for reuse only when `healthy`.
  void ReturnWaiterContext(ContextPtr context, bool healthy);
  ReadOutcome ReadOneEntry(redisContext* context, std::chrono::milliseconds block);
  // Waits until the next reconnect attempt is allowed, `deadline` passes or
  // Close() is called. Returns true when the caller should try again.
  bool WaitToRetry(std::chrono::steady_clock::time_point deadline);

  // Backoff bookkeeping shared by Publish and the waiters.
  void RecordFailure(const std::string& error);
  void RecordConnected();
  void RecordReply();

  bool IsClosed();
  void LogPublishFailure(const std::string& job_id, const std::string& error);
  // Returns `text` with the password replaced, for messages that quote Redis.
  std::string Redact(std::string text) const;
  // "127.0.0.1:6379 (tcp)", for messages.
  std::string Where() const;

  const RedisOptions options_;
  const std::string host_;  // tcp only
  const int port_;          // tcp only

  std::mutex mutex_;
  std::condition_variable retry_wake_;
  bool closed_ = false;                     // GUARDED_BY(mutex_)
  std::vector<ContextPtr> idle_contexts_;   // GUARDED_BY(mutex_)
  std::set<redisContext*> leased_contexts_;  // GUARDED_BY(mutex_)
  // Failures since the last reply from Redis; 0 while healthy.
  int failures_ = 0;  // GUARDED_BY(mutex_)
  std::chrono::steady_clock::time_point retry_at_;  // GUARDED_BY(mutex_)
  std::chrono::steady_clock::time_point last_failure_log_;  // GUARDED_BY(mutex_)
  int64_t unlogged_failures_ = 0;                           // GUARDED_BY(mutex_)

  std::mutex publish_mutex_;
  ContextPtr publish_context_;  // GUARDED_BY(publish_mutex_)
  std::chrono::steady_clock::time_point last_publish_log_;  // GUARDED_BY(publish_mutex_)
  int64_t unlogged_publish_failures_ = 0;                   // GUARDED_BY(publish_mutex_)
};

}  // namespace puddle
