// Fetching an MTA-STS policy (RFC 8461 section 3.3): HTTPS GET of
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt, the certificate verified for mta-sts.DOMAIN, no
// redirects, 200 with text/plain only, at most 64 KiB. Blocking: for the policy workers' threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/units.h"

namespace boost::asio::ssl {
class context;
}

namespace sluice::tlspolicy {

struct Fetched {
  bool ok = false;
  std::string body;   // ok: the policy text
  std::string error;  // !ok: why ("certificate verify failed (hostname mismatch)", "HTTP 404", …)
};

// `addresses`: of the policy host, tried in order; `ctx` verifies peers (a verifying context).
Fetched fetch_policy(const std::string& domain, const std::vector<std::string>& addresses,
                     uint16_t port, boost::asio::ssl::context& ctx, config::Duration timeout);

}  // namespace sluice::tlspolicy
