// `sluice queue …`: the operator's view of a running server, through its read-only admin API
// on the [http] listener (src/http/admin.h).
//   sluice queue sites [--json]    every shaping key: limits configured and learned, connections,
//                                  last signal, suspension
//   sluice queue sources [--json]  every egress source: address, pools, warm-up day, today's
//                                  counts and caps, and its learned limits per site
//   sluice queue explain ID        one message: envelope, attempts, next attempt, where it is
//   sluice queue suspend|bounce|rebind [--domain D] [--site S] [--tenant T] [--campaign C]
//                                  [--source SRC (suspend)] [--pool P (rebind)] --reason R
//                                  [--duration 1h] | [--cancel ID]   operators' rules
//   sluice queue limit [--provider P] [--site S] [--source SRC] [--connection-limit N]
//                                  [--message-rate R] [--max-deliveries N] --reason R
//                                  [--duration 1h] | [--cancel ID]   run-time limit overrides
//   sluice queue summary [--by site|provider|source|pool|tenant|campaign|domain]
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
// sluice queue suspend|bounce|rebind|limit: with selectors, adds the rule; without, lists
// the rules in force; --cancel ID cancels one.
struct RuleOptions {
  std::string kind;  // "suspend", "bounce", "rebind" or "limit"
  std::string domain, site, source, tenant, campaign, provider, pool, reason, duration;
  uint32_t connection_limit = 0, max_deliveries = 0;  // limit: 0 = not given
  std::string message_rate;                            // limit: "" = not given
  uint64_t id = 0;
  bool cancel = false;
};
int queue_rule(const QueueOptions& o, const RuleOptions& r);
int queue_sources(const QueueOptions& o);
int queue_explain(const QueueOptions& o, const std::string& id);
int queue_summary(const QueueOptions& o, const std::string& by);

}  // namespace sluice
