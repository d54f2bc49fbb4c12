#include "queue/embedded/embedded_dispatcher.h"

namespace puddle {

void EmbeddedDispatcher::Publish(const std::string&) {
  {
    std::lock_guard lock(mutex_);
    ++pending_;
  }
  wake_.notify_one();
}

void EmbeddedDispatcher::WaitForWork(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, timeout, [this] { return closed_ || pending_ > 0; });
  if (pending_ > 0) --pending_;
}

void EmbeddedDispatcher::Close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  wake_.notify_all();
}

}  // namespace puddle
