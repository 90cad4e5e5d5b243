// What resolving a recipient domain gives: where its mail goes (Destination), or why not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "smtp/reply.h"

namespace sluice::dns {

// A TLSA record (RFC 6698) of a host, from a DNSSEC-validated answer: DANE (RFC 7672).
struct Tlsa {
  uint8_t usage = 0;     // 2 DANE-TA, 3 DANE-EE (0 and 1 are unusable for SMTP)
  uint8_t selector = 0;  // 0 the whole certificate, 1 its public key
  uint8_t mtype = 0;     // 0 exact, 1 SHA-256, 2 SHA-512
  std::string data;      // the association data, binary
  friend bool operator==(const Tlsa&, const Tlsa&) = default;
};

// One host to try: a name (for logs and SNI) and its addresses, in order.
struct Host {
  std::string name;
  std::vector<std::string> addresses;
  uint16_t port = 25;
  // DANE: the host's validated TLSA records. Non-empty: TLS is required and the certificate
  // must match one of them (src/tlspolicy/).
  std::vector<Tlsa> tlsa;
};

// Where a site's mail goes, as resolved (MX order) or routed.
struct Destination {
  std::string
      site;  // sorted MX host names ("mx1.example.com,mx2.example.com"), or "route:host:port"
  std::string provider;  // from the provider rules; "" when none matched
  std::vector<Host> hosts;
  config::TlsPolicy tls = config::TlsPolicy::kOpportunistic;
  // MTA-STS in testing mode: verify as for "verify", log a failure, deliver anyway.
  bool tls_testing = false;
  // What chose `tls` beyond [delivery] or the route: "mta-sts", "mta-sts testing", "dane",
  // "domain", "provider"; "" otherwise. In log lines and deferral texts.
  std::string tls_by;
  // The _mta-sts.DOMAIN TXT records (AresOptions::mta_sts_txt; cached with the MX answer), and
  // whether that lookup failed (SERVFAIL, timeout) rather than found none.
  std::vector<std::string> sts_records;
  bool sts_lookup_failed = false;
};

// A domain that cannot be resolved: transient (SERVFAIL, timeout) or permanent (NXDOMAIN,
// null MX), with the reply the recipients are failed with.
struct ResolveError {
  bool permanent = false;
  smtp::Reply reply;
};

}  // namespace sluice::dns
