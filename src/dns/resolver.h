// Resolving a recipient domain to a Destination (RFC 5321 section 5.1): MX records in preference
// order (random order among equal preferences), each host's A and AAAA addresses; no MX → the
// domain's own addresses (implicit MX); null MX (RFC 7505) → permanent failure; NXDOMAIN →
// permanent; SERVFAIL, refusal, timeout → transient. Answers are cached for their TTL.
//
// The site of a destination is its sorted MX host names, so domains served by the same hosts
// share shaping state; the provider comes from rules in etc/providers.toml. Route overrides
// ([route."domain"]) bypass DNS for the MX step.
//
// Threads: AresResolver runs c-ares on a thread of its own; resolve() may be called from any
// thread and `done` runs on the resolver thread — post to your own executor from it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/status.h"
#include "dns/destination.h"
#include "dns/providers.h"

namespace sluice::dns {

using ResolveResult = Result<Destination, ResolveError>;

class Resolver {
 public:
  using Done = std::function<void(ResolveResult)>;
  virtual ~Resolver() = default;
  virtual void resolve(const std::string& domain, Done done) = 0;
};

// The site name for a set of MX hosts: lower-case, without trailing dots, sorted, unique, joined
// with ','.
std::string site_of(std::vector<std::string> mx_hosts);

struct AresOptions {
  std::vector<std::string> nameservers;  // "127.0.0.1:5353"; empty: the system's
  uint16_t mx_port = 25;                 // port for MX hosts and implicit MX
  config::Duration timeout{5000};
  std::map<std::string, config::Route> routes;  // lower-case domain -> route
  config::TlsPolicy tls = config::TlsPolicy::kOpportunistic;  // [delivery] tls: MX destinations
  const Providers* providers = nullptr;
  // Also ask for _mta-sts.DOMAIN TXT, in parallel with MX (Destination::sts_records).
  bool mta_sts_txt = false;
};

class AresResolver final : public Resolver {
 public:
  static Result<std::unique_ptr<AresResolver>> create(AresOptions options);
  ~AresResolver() override;
  AresResolver(const AresResolver&) = delete;
  AresResolver& operator=(const AresResolver&) = delete;

  void resolve(const std::string& domain, Done done) override;

  // DNS queries sent so far (cache hits send none): for tests and metrics.
  uint64_t queries_sent() const;

  struct Impl;

 private:
  explicit AresResolver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::dns
