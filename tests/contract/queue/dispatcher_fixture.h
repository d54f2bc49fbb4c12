// Helpers shared by the dispatcher tests: polling with a deadline and threads
// that wait on a dispatcher.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "queue/dispatcher.h"

namespace puddle::testing {

using Clock = std::chrono::steady_clock;

// Calls `condition` every 10 ms until it returns true or `timeout` passes.
inline bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Runs WaitForWork once on each of `count` threads and records when each
// call returned. The destructor closes the dispatcher when a thread still
// waits, so a failed assertion never leaves a thread behind.
class WaitingThreads {
 public:
  WaitingThreads(Dispatcher& dispatcher, int count, std::chrono::milliseconds timeout)
      : dispatcher_(dispatcher), returned_at_(count) {
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this, i, timeout] {
        dispatcher_.WaitForWork(timeout);
        returned_at_[i] = Clock::now();
        ++returned_;
      });
    }
  }

  ~WaitingThreads() {
    if (returned_ < static_cast<int>(threads_.size())) dispatcher_.Close();
    Join();
  }

  int returned() const { return returned_; }

  // Waits for every thread and returns when each WaitForWork call returned.
  std::vector<Clock::time_point> Join() {
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    return returned_at_;
  }

 private:
  Dispatcher& dispatcher_;
  std::vector<Clock::time_point> returned_at_;
  std::atomic<int> returned_{0};
  std::vector<std::thread> threads_;
};

}  // namespace puddle::testing
