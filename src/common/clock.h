// Clock: the injected source of the current time.
//
// Everything that waits, times out or accrues cost reads time through a Clock,
// so tests drive timers with FakeClock instead of sleeping. Both are thread-safe.
#pragma once

#include <atomic>
#include <chrono>

#include "common/time.h"

namespace puddle {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override;
};

// A clock that moves only when a test advances it.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(ToUnixMillis(start)) {}
  TimePoint Now() const override { return FromUnixMillis(now_.load()); }
  void Advance(std::chrono::milliseconds delta) { now_ += delta.count(); }
  void Set(TimePoint time) { now_ = ToUnixMillis(time); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace puddle
