// The deliverability report's first half: reads event-log records (doc/log.md) one at a time
// and keeps what the report needs, per provider and per recipient domain — volume, outcomes,
// deferrals by category over time, the connection-limit pattern (when, from which sources, how
// the limits moved), suspensions, bounces, and the tenants, campaigns and sources behind them.
//
// Memory grows with the number of groups, sources, tenants, campaigns and minutes covered, and
// with 8 octets per distinct recipient (to count volume once across retries) — not with the
// log's size. Records of unknown events, or missing fields, are skipped; a log from an older
// or newer sluice still reports. Single-threaded; the caller feeds records in file order.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace boost::json {
class object;
}

namespace sluice::report {

// The classifier's categories (doc/classify.md), in the order reports show them.
inline constexpr std::array<std::string_view, 13> kCategories = {
    "connection-limit", "rate-limit", "reputation", "greylist",  "mailbox-full",
    "user-unknown",     "policy",     "authentication", "tls",   "dns",
    "network",          "other",      "delivered"};
size_t category_index(std::string_view category);  // "other"'s index when unknown

using CategoryCounts = std::array<uint64_t, kCategories.size()>;

// A limit change of one lane (ThrottleChange).
struct LimitMove {
  int64_t ts_ms = 0;
  std::string source;  // the egress source ("default" without [source.*])
  std::string limit;   // connection_limit, message_rate, max_deliveries, hold
  std::string from, to;
  std::string reason;
};

struct Suspension {
  int64_t ts_ms = 0;
  std::string source;
  std::string duration;
  std::string reply;
};

// Counts for one tenant, campaign or source within a group.
struct Party {
  uint64_t recipients = 0;     // distinct recipients first seen under it
  uint64_t attempts = 0;       // delivery attempts (charged or not)
  uint64_t delivered = 0;
  uint64_t bounced = 0;
  CategoryCounts deferred{};   // deferrals by category
  CategoryCounts bounces{};    // bounces by category
  int64_t first_ms = 0, last_ms = 0;  // first and last attempt
  std::string pool;            // the pool its mail went through (last seen)
};

// One provider (or, for sites of no known provider, the site) or one recipient domain.
struct Group {
  std::string name;
  std::string provider;             // for a domain: its provider (last seen)
  Party total;
  uint64_t expired = 0;
  std::map<int64_t, CategoryCounts> per_minute;  // minute (epoch ms / 60000) → outcomes
  std::map<std::string, Party> sources, tenants, campaigns;
  std::vector<LimitMove> moves;     // in order; at most kMaxMoves kept (the rest counted)
  uint64_t moves_dropped = 0;
  std::vector<Suspension> suspensions;
  std::map<std::string, std::string> last_reply;  // category → the latest reply text
  std::map<std::string, uint64_t> rules;          // the rules that decided deferrals/bounces
  std::map<std::string, uint64_t> sender_domains; // of authentication refusals
  // Delivery latency (reception to delivery), for "messages waited" evidence.
  std::vector<uint32_t> latency_s;  // a sample: at most kMaxLatency values, evenly thinned
  uint64_t latency_seen = 0;
  // The configured connection limit: the configuration's when the report has it
  // (set_configured_limit), else the highest slow start reached (a lower bound).
  std::string configured_limit;
  bool configured_known = false;
  // Per source: the limit and rate the latest signal set (ThrottleChange "to").
  std::map<std::string, std::string> learned_limits, learned_rates;
};

inline constexpr size_t kMaxMoves = 500;
inline constexpr size_t kMaxLatency = 4096;

class Analysis {
 public:
  // One record (a parsed log line). Returns false when it is not a record sluice writes
  // (no "event"); such lines are counted as skipped.
  bool add(const boost::json::object& record);

  // The configuration's connection limit for a provider or site group (after every add()).
  void set_configured_limit(const std::string& group, const std::string& limit);

  const std::map<std::string, Group>& providers() const { return providers_; }
  const std::map<std::string, Group>& domains() const { return domains_; }
  uint64_t records() const { return records_; }
  uint64_t received() const { return received_; }  // recipients accepted (Reception)
  int64_t first_ms() const { return first_ms_; }
  int64_t last_ms() const { return last_ms_; }

 private:
  void attempt(const boost::json::object& r, std::string_view event, int64_t ts);
  void limit_change(const boost::json::object& r, int64_t ts, bool suspension);
  Group& group(std::map<std::string, Group>& in, const std::string& name);

  std::map<std::string, Group> providers_, domains_;
  std::unordered_set<uint64_t> seen_;  // hashes of (id, recipient)
  uint64_t records_ = 0, received_ = 0;
  uint64_t rng_ = 1;  // the latency sample's generator
  int64_t first_ms_ = 0, last_ms_ = 0;
};

// "2026-11-30T16:16:55.123Z" → epoch ms; nullopt when it is not RFC 3339 UTC.
std::optional<int64_t> parse_timestamp(std::string_view ts);

}  // namespace sluice::report
