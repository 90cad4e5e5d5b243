// The adaptive controller of one shaping key (egress source, site): how many connections may be
// open, how fast messages may go, how many deliveries a connection may make, and whether the key
// is suspended — learned from the receiver's signals below the configured maxima.
//
// Connections (doc/shaping.md):
// - slow start: a key never seen starts at tuning.initial_connections and gains one connection
//   per connection that works (banner and EHLO accepted), up to the configured limit;
// - a connection-limit signal sets the limit to the connections that were working (at least 1)
//   and holds new connections for `hold` (doubling, up to max_hold, while none works): the
//   refused message waits in the ready queue, nothing reconnects at once;
// - after probe_interval of clean operation while every allowed connection is busy, the limit
//   is probed one higher; a probe refused within its interval doubles the interval (memory);
// - learned limits decay back up by one step per `decay` (and on load from the spool).
// Message rate: a rate-limit signal sets the rate to 80% of what was being delivered; probes
// raise it by 10% after clean intervals. Reputation signals suspend the key (doubling on
// repeats). Configured values are maxima; adaptive = false turns learning off (exactly the
// configured limits, like the oracle of bench/limits.sh).
//
// Pure logic over injected time (milliseconds since the epoch); not thread-safe — the queue
// manager's strand owns every controller.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace sluice::shaping {

// What a controller learned, as persisted in the spool database (one record per key).
struct Learned {
  uint32_t connection_limit = 0;  // 0: nothing learned (slow start)
  double message_rate = 0;        // per second; 0: nothing learned
  uint32_t max_deliveries = 0;    // per connection; 0: nothing learned
  int64_t probe_interval_ms = 0;  // 0: tuning.probe_interval
  int64_t suspended_until_ms = 0;
  uint32_t suspensions = 0;  // in a row (the next one is twice as long)
  std::string suspend_reason;
  int64_t updated_ms = 0;  // when it was last changed

  std::string encode() const;
  static std::optional<Learned> decode(std::string_view s);
};

// One change of a key's limits, for the ThrottleChange / Suspension log records.
struct Change {
  std::string what;  // "connection_limit", "message_rate", "max_deliveries", "suspension",
                     // "hold"
  std::string from, to;
  std::string why;  // "connection-limit signal", "probe", "slow start", "decay", …
};

class Controller {
 public:
  Controller(const config::ShapingLimits& limits, const config::ShapingTuning& tuning,
             int64_t now_ms);

  // Restores learned state (after a restart), applying the decay for the time that passed.
  void restore(const Learned& l, int64_t now_ms);
  const Learned& learned() const { return learned_; }
  const config::ShapingLimits& limits() const { return limits_; }
  // The configuration changed (a new domain override joined the site): new maxima.
  void set_limits(const config::ShapingLimits& limits);

  // Connections the key may have open now.
  uint32_t connection_limit() const;
  bool in_slow_start() const { return adaptive() && learned_.connection_limit == 0; }
  // May a new connection be opened now, with `open` connections (working or being set up)?
  bool may_open(int64_t now_ms, uint32_t open) const;
  // When may_open may become true through time alone (hold, suspension, connection rate);
  // 0 when time is not what stops it.
  int64_t reopen_at_ms(int64_t now_ms) const;
  // A new connection is being opened (charges the connection rate).
  void opened(int64_t now_ms);

  // Deliveries a connection may make before it closes.
  uint32_t max_deliveries() const;
  // Message rate: 0 when a message may go now, else how long to wait (ms). Charges the message
  // when it may go.
  int64_t take_message(int64_t now_ms);
  // The effective message rate per second; 0: unlimited.
  double message_rate() const;

  bool suspended(int64_t now_ms) const { return now_ms < learned_.suspended_until_ms; }
  // An operator's suspension until `until_ms` (now or earlier: lifted), whatever the receiver
  // said; it does not count toward the doubling of the receiver's suspensions.
  void suspend_by_operator(int64_t until_ms, const std::string& reason) {
    learned_.suspended_until_ms = until_ms;
    learned_.suspend_reason = reason;
  }
  int64_t suspended_until_ms() const { return learned_.suspended_until_ms; }
  int64_t hold_until_ms() const { return hold_until_ms_; }

  // Signals. Each returns the change it made (nullopt when none; the log records changes).
  // Banner and EHLO accepted; `working`: connections of the key that work now, this one
  // included (connections set up before a signal and accepted after it prove the limit higher).
  std::optional<Change> on_connected(int64_t now_ms, uint32_t working);
  std::optional<Change> on_connection_limit(int64_t now_ms, uint32_t working);
  std::optional<Change> on_rate_limit(int64_t now_ms, double delivered_per_second);
  std::optional<Change> on_deliveries_limit(int64_t now_ms, uint32_t delivered_on_connection);
  std::optional<Change> on_reputation(int64_t now_ms, const std::string& reason);
  // Dead destination: a connection failed before it worked (refused, reset, closed or timed
  // out before the banner, a 4xx at the banner, TLS failing) while no other connection to the
  // site works. The site is unavailable: no connection for dead_probe, then one probe at a
  // time; each failed probe doubles the wait (up to max_dead_probe); the first connection that
  // works (on_connected) ends it.
  std::optional<Change> on_unavailable(int64_t now_ms);
  bool unavailable() const { return unavailable_; }
  // Periodic: probing and decay. `waiting`: messages wait for this key; `connections_full`:
  // every allowed connection is open (probing a key that does not need more learns nothing).
  std::optional<Change> tick(int64_t now_ms, bool waiting, bool connections_full);

 private:
  bool adaptive() const { return limits_.adaptive; }
  int64_t probe_interval() const;

  config::ShapingLimits limits_;
  config::ShapingTuning tuning_;
  Learned learned_;
  uint32_t slow_start_limit_;
  int64_t hold_until_ms_ = 0;
  int64_t hold_ms_ = 0;       // the current hold (doubles while nothing works)
  bool unavailable_ = false;  // dead destination: one probe at a time, after the wait
  int64_t dead_wait_ms_ = 0;  // the current wait between probes (doubles on failure)
  uint32_t working_since_hold_ = 0;
  int64_t last_signal_ms_ = 0;  // last connection-limit signal
  int64_t last_probe_ms_ = 0;   // last probe (connection limit raised by one)
  bool probing_ = false;        // a probe is under way (the last raise not yet proven)
  int64_t last_rate_signal_ms_ = 0;
  int64_t last_rate_probe_ms_ = 0;
  int64_t last_deliveries_signal_ms_ = 0;  // last deliveries-per-connection signal
  int64_t last_deliveries_probe_ms_ = 0;   // last time max_deliveries was raised
  int64_t last_decay_ms_ = 0;
  double next_message_ms_ = 0;     // GCRA: the earliest time of the next message
  double next_connection_ms_ = 0;  // likewise for connections
};

}  // namespace sluice::shaping
