// The queue sweeper: re-sends wake-ups for queued jobs that no worker claimed.
//
// A dispatcher can lose a wake-up: Redis flushed or restarted, a failed XADD,
// or a process that took the wake-up and stopped before claiming. The job row
// stays queued in the database, so publishing its id again repairs the loss.
// Workers also poll the database on every WaitForWork timeout; the sweeper
// shortens the delay when that poll interval is long, and wakes workers for
// jobs whose retry backoff has passed, which nothing else publishes.
#pragma once

#include "common/result.h"
#include "common/time.h"
#include "queue/dispatcher.h"
#include "storage/store.h"

namespace puddle {

// Most ids one call publishes; the rest wait for the next call.
inline constexpr int kMaxRepublishedJobs = 500;

// Publishes the id of every queued job that is runnable now and was last
// updated before `older_than` (at most kMaxRepublishedJobs, oldest first).
// Safe to run in several processes at once: a duplicate wake-up costs one
// failed claim. Returns the store's error when the query fails.
Status RepublishQueuedJobs(Store& store, Dispatcher& dispatcher, TimePoint older_than);

}  // namespace puddle
