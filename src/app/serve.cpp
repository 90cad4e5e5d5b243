#include "app/serve.h"

#include <cstdio>

#include "app/server.h"
#include "config/config.h"

namespace sluice {

namespace {
constexpr int kExitConfig = 78;  // sysexits.h EX_CONFIG
}

int serve(const ServeOptions& options) {
  auto loaded = config::load_config_file(options.config_path);
  if (!loaded) {
    for (const auto& e : loaded.error()) std::fprintf(stderr, "sluice: %s\n", e.str().c_str());
    std::fprintf(stderr, "sluice: %zu error(s) in %s\n", loaded.error().size(),
                 options.config_path.c_str());
    return kExitConfig;
  }
  if (options.check_only) {
    std::printf("%s: configuration OK\n", options.config_path.c_str());
    return 0;
  }
  Server server(std::move(*loaded));
  return server.run();
}

}  // namespace sluice
