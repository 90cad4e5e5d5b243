// `sluice serve`: load the configuration, then run the server or only check the configuration.
#pragma once

#include <string>

namespace sluice {

struct ServeOptions {
  std::string config_path = "etc/sluice.toml";
  bool check_only = false;  // --check-config: validate and exit
};

// Returns the process exit code: 0 success, 78 (EX_CONFIG) for a bad configuration.
int serve(const ServeOptions& options);

}  // namespace sluice
