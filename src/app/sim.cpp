#include "app/sim.h"

#include <cstdio>

#include "sim/simulator.h"

namespace sluice {

int run_sim(const std::string& config_path) {
  auto cfg = sim::load_sim_config(config_path);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::fprintf(stderr, "sluice sim: %s\n", e.str().c_str());
    return 78;
  }
  return sim::run_simulator(*cfg);
}

}  // namespace sluice
