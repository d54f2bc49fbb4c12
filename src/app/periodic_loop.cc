#include "app/periodic_loop.h"

#include "common/log.h"

namespace puddle {

PeriodicLoop::PeriodicLoop(PeriodicLoopOptions options, std::function<void()> body)
    : options_(std::move(options)), body_(std::move(body)) {
  thread_ = std::thread([this] { Loop(); });
}

PeriodicLoop::~PeriodicLoop() { Stop(); }

void PeriodicLoop::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  ReleaseLease();
}

void PeriodicLoop::Loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    if (HoldLease()) body_();
    lock.lock();
    wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

bool PeriodicLoop::HoldLease() {
  if (options_.lease_store == nullptr) return true;
  auto held = options_.lease_store->WriteValue<bool>([this](Tx& tx) {
    return tx.TryAcquireLease(options_.name, options_.holder, options_.lease_ttl);
  });
  if (!held) {
    // Without a renewal the lease may expire and pass to another process, so
    // this process stops running the loop until it can renew again.
    log::Warning("taking the loop's lease failed; skipping this run",
                 {{"loop", options_.name}, {"error", held.error().message}});
    holding_ = false;
    return false;
  }
  // Only the first outcome and changes are logged: renewals and skipped runs
  // happen every interval.
  if (!lease_logged_ || *held != holding_) {
    log::Info(*held ? "took the loop's lease; this process runs the loop"
                    : "another process holds the loop's lease; this process skips the loop",
              {{"loop", options_.name}});
    lease_logged_ = true;
  }
  holding_ = *held;
  return holding_;
}

void PeriodicLoop::ReleaseLease() {
  if (options_.lease_store == nullptr || !holding_) return;
  auto released = options_.lease_store->Write(
      [this](Tx& tx) { return tx.ReleaseLease(options_.name, options_.holder); });
  if (!released) {
    log::Warning("releasing the loop's lease failed; another process takes it when it expires",
                 {{"loop", options_.name}, {"error", released.error().message}});
  }
  holding_ = false;
}

}  // namespace puddle
