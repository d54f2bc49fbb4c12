#include "workers/loops/reconcile_loop.h"

#include "common/log.h"

namespace puddle {

Result<int> ReconcileLoop::RunOnce() {
  PUDDLE_ASSIGN_OR_RETURN(auto running, store_.ReadValue<std::vector<System>>([](Tx& tx) {
    return tx.ListSystemsByStatus({SystemStatus::kRunning});
  }));

  int changed = 0;
  for (const auto& system : running) {
    auto provider = providers_.find(system.provider);
    if (provider == providers_.end()) continue;

    auto observed = provider->second->Poll(system.id, system.provider_state);
    if (!observed) {
      log::Warning("poll failed", {{"system_id", system.id}, {"error", observed.error().message}});
      continue;
    }
    if (observed->gone != GoneReason::kNone) {
      auto recorded = systems_.RecordMachineGone(system.id, *observed);
      if (!recorded) {
        log::Error("recording a gone machine failed",
                   {{"system_id", system.id}, {"error", recorded.error().message}});
      }
      ++changed;
      continue;
    }

    auto token = systems_.ProductToken(system);
    if (!token) continue;
    LaunchRequest request;
    request.system_id = system.id;
    request.product_token = *token;
    auto image = store_.ReadValue<std::optional<Image>>([&](Tx& tx) { return tx.GetImage(system.image_id); });
    if (!image || !*image) continue;
    request.image = std::move(**image);
    ProductStatus health = provider->second->CheckProduct(request, system.provider_state);
    if (health == ProductStatus::kStarting) health = ProductStatus::kUnhealthy;
    if (health != system.product_status) {
      auto recorded = systems_.RecordProductHealth(system.id, health);
      if (!recorded) {
        log::Error("recording product health failed",
                   {{"system_id", system.id}, {"error", recorded.error().message}});
      }
      ++changed;
    }
  }
  return changed;
}

}  // namespace puddle
