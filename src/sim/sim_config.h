// `sluice sim`: configuration of the receiver simulator — one or more providers, each a
// listening address with the limits and behaviours of a real receiving service (per-IP
// connection limits that tighten under pressure, rate limits, reputation blocks, greylisting,
// tarpitting, random failures, hard bounces, full mailboxes, a server that hangs mid-DATA).
// Reply texts are data. doc/sim.md documents every key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/status.h"

namespace sluice::sim {

using config::Duration;

using config::Rate;

struct LimitChange {
  Duration at{0};  // since the simulator started
  uint32_t connection_limit = 0;
};

enum class Stage { kBanner, kEhlo, kMail };
// How a connection over the limit is refused: with limit_reply, or by hanging up silently.
enum class LimitAction { kReply, kHangup };
// How a host that is down treats a connection: accepts and closes at once, is not listening
// (connection refused), or accepts and never says anything.
enum class DownMode { kClose, kRefuse, kSilent };

struct ProviderConfig {
  std::string name;
  config::Endpoint listen;
  std::string hostname = "mx.sim.test";

  uint32_t connection_limit = 0;  // concurrent connections per client IP; 0 = unlimited
  Stage limit_stage = Stage::kBanner;
  std::string limit_reply =
      "421 4.7.0 Too many concurrent connections from this IP, try again later";
  std::vector<LimitChange> limit_schedule;
  LimitAction limit_action = LimitAction::kReply;

  // Down for this long from the start, then up (0: never down).
  Duration down_for{0};
  DownMode down_mode = DownMode::kClose;

  // Dynamic limits: each refused connection earns the IP a penalty point; every
  // penalty_threshold points lower its limit by penalty_step (never below 1); one point decays
  // every penalty_decay. penalty_threshold 0: the limit is static.
  uint32_t penalty_threshold = 0;
  uint32_t penalty_step = 1;
  Duration penalty_decay{10'000};

  Rate message_rate;
  std::string rate_reply = "451 4.7.1 Message rate limit exceeded, try again later";
  Rate connection_rate;
  std::string connection_rate_reply = "421 4.7.0 Connection rate limit exceeded, try again later";

  std::vector<std::string> blocked_ips;
  std::string block_reply =
      "421 4.7.0 [TS01] Messages from this IP temporarily deferred due to user complaints";

  // Messages one connection may deliver; then the next MAIL gets session_cap_reply and the
  // connection is closed (Yahoo-style). 0: no cap.
  uint32_t max_messages_per_connection = 0;
  std::string session_cap_reply =
      "421 4.7.0 Max message per connection exceeded, closing transmission channel";

  Duration greylist{0};
  std::string greylist_reply = "451 4.7.1 Greylisted, please try again later";
  Duration tarpit{0};

  double transient_failure_rate = 0.0;
  std::string transient_reply = "451 4.3.0 Temporary system problem, try again later";
  std::string hard_bounce_pattern;  // regex on the recipient address
  std::string hard_bounce_reply =
      "550 5.1.1 The email account that you tried to reach does not exist";
  std::string mailbox_full_pattern;
  std::string mailbox_full_reply =
      "452 4.2.2 The email account that you tried to reach is over quota";
  std::string hang_pattern;  // a recipient matching this makes the server hang after DATA's 354
};

struct SimConfig {
  std::string stats_file;  // JSON, rewritten every second and at exit; "" = none
  std::optional<config::Endpoint> http_listen;  // GET /stats
  uint64_t seed = 1;                            // random failures are reproducible
  std::vector<ProviderConfig> providers;
};

Result<SimConfig, std::vector<config::ConfigError>> load_sim_config(const std::string& path);
Result<SimConfig, std::vector<config::ConfigError>> parse_sim_config(std::string_view text,
                                                                     const std::string& name);

}  // namespace sluice::sim
