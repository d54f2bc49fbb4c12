// EmbeddedDispatcher: in-process wake-ups with a condition variable.
#pragma once

#include <condition_variable>
#include <mutex>

#include "queue/dispatcher.h"

namespace puddle {

class EmbeddedDispatcher final : public Dispatcher {
 public:
  void Publish(const std::string& job_id) override;
  void WaitForWork(std::chrono::milliseconds timeout) override;
  void Close() override;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  uint64_t pending_ = 0;  // GUARDED_BY(mutex_)
  bool closed_ = false;   // GUARDED_BY(mutex_)
};

}  // namespace puddle
