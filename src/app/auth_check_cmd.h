// `sluice auth-check DOMAIN [--config FILE] [--json]`: SPF, DKIM, DMARC and FCrDNS as the world
// sees them for mail sluice sends from DOMAIN (src/auth/auth_check.h). Exit 0 when nothing is
// wrong, 1 when something is (warnings alone: 0), 78 for a bad configuration, 69 when DNS
// cannot be asked.
#pragma once

#include <string>

namespace sluice {

struct AuthCheckOptions {
  std::string domain;
  std::string config_path = "etc/sluice.toml";
  bool json = false;
};

int auth_check(const AuthCheckOptions& o);

}  // namespace sluice
