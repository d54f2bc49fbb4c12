// ReconcileLoop: compares running systems with what their provider observes.
//
// For each running system with no job under way it polls the provider: a
// machine that is gone is recorded (process exit makes the system failed, a
// host restart stopped) and product health changes are recorded. Thread-safe;
// RunOnce is called from one periodic thread.
#pragma once

#include "services/systems/system_service.h"
#include "storage/store.h"

namespace puddle {

class ReconcileLoop {
 public:
  ReconcileLoop(Store& store, const ProviderMap& providers, SystemService& systems)
      : store_(store), providers_(providers), systems_(systems) {}

  // Checks every running system once. Returns how many changed.
  Result<int> RunOnce();

 private:
  Store& store_;
  const ProviderMap& providers_;
  SystemService& systems_;
};

}  // namespace puddle
