// The TLS policy of each recipient domain, applied to its Destination: a Resolver that wraps the
// MX resolver (src/dns/resolver.h) and raises or sets `tls` from, in order,
//   1. [tls.provider] by the destination's provider (the whole site alike);
//   2. [tls.domain] by the recipient domain — the operator's word wins over what is published;
//   3. MTA-STS (RFC 8461): the `_mta-sts` TXT record and the HTTPS policy it announces, cached
//      for the policy's max_age. `enforce` keeps only the MX hosts the policy lists and requires
//      a certificate valid for the host (tls = verify); `testing` verifies and logs, and
//      delivers whatever the result;
//   4. DANE (RFC 7672): when the resolver validated the MX answer (AD bit), each MX host's
//      TLSA records, validated too; a host with usable records is authenticated by them alone
//      (DANE takes precedence over MTA-STS, RFC 8461 section 2).
// A domain whose policy comes from 2–4 gets a site of its own ("mx1.example,mx2.example
// [mta-sts]"), so that its mail never shares a connection made under a weaker policy; shaping
// still matches [shaping.site] by the MX hosts alone.
//
// The `_mta-sts` TXT records come with the MX answer (the resolver asks for both at once and
// caches them for their TTL: AresOptions::mta_sts_txt). A policy is fetched when a domain
// announces an id no cached policy has; the fetches, and DANE's TLSA lookups, run on two worker
// threads of this class (never on the I/O threads), and only the messages of that domain wait
// for them. A fetch that fails is not tried again for `mta_sts_retry`; a cached policy stays in
// force until it expires even when the TXT record goes away or the fetch fails (section 5.1).
// Fetched policies are kept in the spool's state across restarts. Routes are left as
// configured.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "dns/resolver.h"

namespace boost::asio::ssl {
class context;
}
namespace sluice::observe {
class EventLog;
}
namespace sluice::spool {
class Spool;
}

namespace sluice::tlspolicy {

struct PolicyOptions {
  config::TlsConfig tls;
  std::vector<std::string> nameservers;  // as [dns]: for TXT, A and TLSA lookups
  config::Duration dns_timeout{5'000};
  boost::asio::ssl::context* https = nullptr;  // verifying context for policy fetches
  observe::EventLog* log = nullptr;            // MtaStsPolicy / DanePolicy records
  // Fetched MTA-STS policies are kept here ("mta-sts/DOMAIN") and read back at start: a restart
  // neither forgets an enforce policy nor fetches every policy again.
  spool::Spool* state = nullptr;
  std::function<int64_t()> wall_ms;            // Unix milliseconds; default system_clock
  std::function<int64_t()> now_ms;             // monotonic milliseconds; default steady_clock
};

class PolicyResolver final : public dns::Resolver {
 public:
  PolicyResolver(dns::Resolver& inner, PolicyOptions options);
  ~PolicyResolver() override;
  PolicyResolver(const PolicyResolver&) = delete;
  PolicyResolver& operator=(const PolicyResolver&) = delete;

  void resolve(const std::string& domain, Done done) override;

  // Whether anything beyond the inner resolver is configured (MTA-STS, DANE or a [tls] map).
  static bool needed(const config::TlsConfig& tls);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::tlspolicy
