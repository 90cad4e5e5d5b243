// What resolving a recipient domain gives: where its mail goes (Destination), or why not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "smtp/reply.h"

namespace sluice::dns {

// One host to try: a name (for logs and SNI) and its addresses, in order.
struct Host {
  std::string name;
  std::vector<std::string> addresses;
  uint16_t port = 25;
};

// Where a site's mail goes, as resolved (MX order) or routed.
struct Destination {
  std::string
      site;  // sorted MX host names ("mx1.example.com,mx2.example.com"), or "route:host:port"
  std::string provider;  // from the provider rules; "" when none matched
  std::vector<Host> hosts;
  config::TlsPolicy tls = config::TlsPolicy::kOpportunistic;
};

// A domain that cannot be resolved: transient (SERVFAIL, timeout) or permanent (NXDOMAIN,
// null MX), with the reply the recipients are failed with.
struct ResolveError {
  bool permanent = false;
  smtp::Reply reply;
};

}  // namespace sluice::dns
