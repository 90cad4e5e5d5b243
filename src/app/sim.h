// `sluice sim --config FILE`: load the simulator configuration and run it.
#pragma once

#include <string>

namespace sluice {
int run_sim(const std::string& config_path);
}
