// Dispatcher: wakes workers when jobs are written.
//
// Job rows in the database are the truth; the dispatcher only carries "there
// may be work" signals, so a lost signal delays a job by at most one poll
// interval and loses nothing. Thread-safe.
#pragma once

#include <chrono>
#include <string>

namespace puddle {

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;

  // Signals that job `job_id` was committed and can be claimed.
  virtual void Publish(const std::string& job_id) = 0;

  // Blocks until a job may be available, `timeout` passes or Close() is called.
  virtual void WaitForWork(std::chrono::milliseconds timeout) = 0;

  // Wakes every waiter and makes later waits return at once.
  virtual void Close() = 0;
};

}  // namespace puddle
