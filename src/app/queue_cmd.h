// `sluice queue …`: the operator's view of a running server, through its read-only admin API
// on the [http] listener (src/http/admin.h).
//   sluice queue sites [--json]    every shaping key: limits configured and learned, connections,
//                                  last signal, suspension
//   sluice queue sources [--json]  every egress source: address, pools, warm-up day, today's
//                                  counts and caps, and its learned limits per site
//   sluice queue explain ID        one message: envelope, attempts, next attempt, where it is
//   sluice queue suspend|bounce [--domain D] [--tenant T] [--campaign C] --reason R
//                                  [--duration 1h] | [--cancel ID]   operators' rules
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

struct QueueOptions {
  std::string config_path = "etc/sluice.toml";  // for [http] listen
  std::string http;                             // "host:port", overrides the config
  std::string token;                            // [http] api_token; "" = the config's
  bool json = false;
};

int queue_sites(const QueueOptions& o);
// sluice queue suspend|bounce: with selectors, adds the rule; without, lists the rules in
// force; --cancel ID cancels one.
struct RuleOptions {
  std::string kind;  // "suspend" or "bounce"
  std::string domain, tenant, campaign, reason, duration;
  uint64_t id = 0;
  bool cancel = false;
};
int queue_rule(const QueueOptions& o, const RuleOptions& r);
int queue_sources(const QueueOptions& o);
int queue_explain(const QueueOptions& o, const std::string& id);

}  // namespace sluice
