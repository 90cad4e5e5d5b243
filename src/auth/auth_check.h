// `sluice auth-check DOMAIN`: does the world's DNS vouch for mail sluice sends from DOMAIN?
// Looks up and evaluates, against the configuration:
//   - SPF (RFC 7208) for each egress source's address (src/auth/spf.h);
//   - DKIM: each configured selector's published key against the configured private key;
//   - DMARC (RFC 7489): the policy record (DOMAIN's, else its organizational domain's, taken as
//     its last two labels: no public-suffix list here), and whether DKIM and SPF align;
//   - FCrDNS: each source's PTR names, confirmed forward, against its EHLO name.
// Each finding says what is wrong and the record to publish to fix it. Blocking lookups; a
// command-line tool, not the delivery path.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "dns/lookup.h"

namespace sluice::auth {

struct Finding {
  std::string check;    // spf, dkim, dmarc, fcrdns
  std::string subject;  // what it is about: a source, a selector, the domain
  std::string status;   // ok, warning, problem
  std::string message;  // what was found
  std::string fix;      // what to publish or change ("" when nothing)
};

std::vector<Finding> auth_check(const config::Config& cfg, const std::string& domain,
                                dns::Lookup& dns);

// "v=DKIM1; k=rsa; p=ABC" → {{"v","DKIM1"},{"k","rsa"},{"p","ABC"}} (tags trimmed, whitespace
// inside values removed for p=).
std::vector<std::pair<std::string, std::string>> tags(const std::string& record);

}  // namespace sluice::auth
