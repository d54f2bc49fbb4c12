#include "workers/loops/queue_sweeper.h"

#include "common/log.h"

namespace puddle {

Status RepublishQueuedJobs(Store& store, Dispatcher& dispatcher, TimePoint older_than) {
  PUDDLE_ASSIGN_OR_RETURN(auto job_ids, store.ReadValue<std::vector<std::string>>([&](Tx& tx) {
    return tx.ListUnclaimedJobIds(older_than, kMaxRepublishedJobs);
  }));
  for (const auto& job_id : job_ids) {
    log::Debug("republishing queued job", {{"job_id", job_id}});
    dispatcher.Publish(job_id);
  }
  if (!job_ids.empty()) {
    log::Info("republished unclaimed queued jobs",
              {{"count", std::to_string(job_ids.size())}, {"older_than", FormatTime(older_than)}});
  }
  return Ok();
}

}  // namespace puddle
