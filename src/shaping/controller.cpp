#include "shaping/controller.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/text.h"

namespace sluice::shaping {
namespace {

std::string rate_str(double r) {
  if (r <= 0) return "unlimited";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f/s", r);
  return buf;
}

}  // namespace

// "v1 LIMIT RATE DELIVERIES PROBE SUSPENDED_UNTIL SUSPENSIONS UPDATED REASON…"
std::string Learned::encode() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "v1 %u %.4f %u %lld %lld %u %lld ", connection_limit, message_rate,
                max_deliveries, static_cast<long long>(probe_interval_ms),
                static_cast<long long>(suspended_until_ms), suspensions,
                static_cast<long long>(updated_ms));
  std::string out = buf;
  out.append(suspend_reason);
  return out;
}

std::optional<Learned> Learned::decode(std::string_view s) {
  std::vector<std::string_view> f;
  size_t pos = 0;
  while (f.size() < 8) {
    const size_t sp = s.find(' ', pos);
    if (sp == std::string_view::npos) return std::nullopt;
    f.push_back(s.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (f[0] != "v1") return std::nullopt;
  Learned l;
  auto num = [](std::string_view v, auto& out) {
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && p == v.data() + v.size();
  };
  long long probe = 0, until = 0, updated = 0;
  const std::string rate(f[2]);
  char* end = nullptr;
  l.message_rate = std::strtod(rate.c_str(), &end);
  if (end != rate.c_str() + rate.size() || !(l.message_rate >= 0)) return std::nullopt;
  if (!num(f[1], l.connection_limit) || !num(f[3], l.max_deliveries) || !num(f[4], probe) ||
      !num(f[5], until) || !num(f[6], l.suspensions) || !num(f[7], updated))
    return std::nullopt;
  l.probe_interval_ms = probe;
  l.suspended_until_ms = until;
  l.updated_ms = updated;
  l.suspend_reason = std::string(s.substr(pos));
  return l;
}

Controller::Controller(const config::ShapingLimits& limits, const config::ShapingTuning& tuning,
                       int64_t now_ms)
    : limits_(limits),
      tuning_(tuning),
      slow_start_limit_(limits.adaptive
                            ? std::min(limits.connection_limit, tuning.initial_connections)
                            : limits.connection_limit),
      hold_ms_(tuning.hold.count()),
      last_decay_ms_(now_ms) {}

void Controller::set_limits(const config::ShapingLimits& limits) {
  limits_ = limits;
  if (!limits_.adaptive) slow_start_limit_ = limits_.connection_limit;
  slow_start_limit_ = std::min(slow_start_limit_, limits_.connection_limit);
}

void Controller::restore(const Learned& l, int64_t now_ms) {
  learned_ = l;
  // Decay for the time that passed: one step per `decay` since the last change.
  const int64_t decay = std::max<int64_t>(1, tuning_.decay.count());
  const int64_t steps = std::max<int64_t>(0, (now_ms - l.updated_ms) / decay);
  if (learned_.connection_limit > 0) {
    const int64_t up = learned_.connection_limit + steps;
    learned_.connection_limit =
        up >= limits_.connection_limit ? 0 : static_cast<uint32_t>(up);  // 0: slow start again
  }
  // A learned rate comes back 25% per step; after a day away it is forgotten.
  if (steps >= 24) learned_.message_rate = 0;
  for (int64_t i = 0; i < steps && learned_.message_rate > 0; ++i) learned_.message_rate *= 1.25;
  for (int64_t i = 0; i < steps && learned_.probe_interval_ms > 0; ++i)
    learned_.probe_interval_ms /= 2;  // at most ~40 halvings: the loop ends when it reaches 0
  if (learned_.probe_interval_ms < tuning_.probe_interval.count()) learned_.probe_interval_ms = 0;
  if (steps > 0) {
    learned_.max_deliveries = 0;
    if (!suspended(now_ms)) learned_.suspensions = 0;
  }
  last_decay_ms_ = now_ms;
  last_signal_ms_ = std::min(now_ms, l.updated_ms);
}

int64_t Controller::probe_interval() const {
  return learned_.probe_interval_ms > 0 ? learned_.probe_interval_ms
                                        : tuning_.probe_interval.count();
}

uint32_t Controller::connection_limit() const {
  if (!adaptive()) return limits_.connection_limit;
  if (learned_.connection_limit == 0) return slow_start_limit_;
  return std::min(learned_.connection_limit, limits_.connection_limit);
}

bool Controller::may_open(int64_t now_ms, uint32_t open) const {
  if (suspended(now_ms) || now_ms < hold_until_ms_) return false;
  if (unavailable_ && open > 0) return false;  // one probe at a time
  if (open >= connection_limit()) return false;
  if (limits_.max_connection_rate.limited() && now_ms < next_connection_ms_) return false;
  return true;
}

int64_t Controller::reopen_at_ms(int64_t now_ms) const {
  int64_t at = 0;
  if (suspended(now_ms)) at = std::max(at, learned_.suspended_until_ms);
  if (now_ms < hold_until_ms_) at = std::max(at, hold_until_ms_);
  if (limits_.max_connection_rate.limited() && now_ms < next_connection_ms_)
    at = std::max(at, static_cast<int64_t>(std::ceil(next_connection_ms_)));
  return at;
}

void Controller::opened(int64_t now_ms) {
  if (!limits_.max_connection_rate.limited()) return;
  const double interval = 1000.0 / limits_.max_connection_rate.per_second();
  next_connection_ms_ = std::max(next_connection_ms_, static_cast<double>(now_ms)) + interval;
}

uint32_t Controller::max_deliveries() const {
  if (adaptive() && learned_.max_deliveries > 0)
    return std::min(learned_.max_deliveries, limits_.max_deliveries_per_connection);
  return limits_.max_deliveries_per_connection;
}

double Controller::message_rate() const {
  const double configured =
      limits_.max_message_rate.limited() ? limits_.max_message_rate.per_second() : 0.0;
  const double learned = adaptive() ? learned_.message_rate : 0.0;
  if (configured > 0 && learned > 0) return std::min(configured, learned);
  return configured > 0 ? configured : learned;
}

int64_t Controller::take_message(int64_t now_ms) {
  const double rate = message_rate();
  if (rate <= 0) return 0;
  const double now = static_cast<double>(now_ms);
  if (now + 0.5 < next_message_ms_) return static_cast<int64_t>(std::ceil(next_message_ms_ - now));
  next_message_ms_ = std::max(next_message_ms_, now) + 1000.0 / rate;
  return 0;
}

std::optional<Change> Controller::on_unavailable(int64_t now_ms) {
  if (unavailable_ && now_ms < hold_until_ms_) return std::nullopt;  // the same cohort
  const int64_t from = dead_wait_ms_;
  dead_wait_ms_ = unavailable_
                      ? std::min<int64_t>(tuning_.max_dead_probe.count(), dead_wait_ms_ * 2)
                      : tuning_.dead_probe.count();
  unavailable_ = true;
  hold_until_ms_ = std::max(hold_until_ms_, now_ms + dead_wait_ms_);
  return Change{"hold", std::to_string(from) + "ms", std::to_string(dead_wait_ms_) + "ms",
                from ? "site unavailable: the probe failed" : "site unavailable: nothing works"};
}

std::optional<Change> Controller::on_connected(int64_t now_ms, uint32_t working) {
  hold_ms_ = tuning_.hold.count();  // something works: holds start short again
  if (unavailable_) {
    unavailable_ = false;
    const int64_t was = dead_wait_ms_;
    dead_wait_ms_ = 0;
    hold_until_ms_ = 0;
    return Change{"hold", std::to_string(was) + "ms", "0ms", "site available: a probe works"};
  }
  if (!adaptive()) return std::nullopt;
  if (in_slow_start()) {
    if (slow_start_limit_ >= limits_.connection_limit) return std::nullopt;
    const uint32_t from = slow_start_limit_++;
    return Change{"connection_limit", std::to_string(from), std::to_string(slow_start_limit_),
                  "slow start: a connection works"};
  }
  if (working > learned_.connection_limit && working <= limits_.connection_limit) {
    const uint32_t from = learned_.connection_limit;
    learned_.connection_limit = working;
    learned_.updated_ms = now_ms;
    return Change{"connection_limit", std::to_string(from), std::to_string(working),
                  "connections set up before the signal work"};
  }
  return std::nullopt;
}

std::optional<Change> Controller::on_connection_limit(int64_t now_ms, uint32_t working) {
  // A new attempt after the hold that meets the limit again with nothing working: hold longer.
  if (working == 0 && now_ms >= hold_until_ms_ && last_signal_ms_ > 0)
    hold_ms_ = std::min<int64_t>(tuning_.max_hold.count(), std::max<int64_t>(1, hold_ms_) * 2);
  hold_until_ms_ = std::max(hold_until_ms_, now_ms + hold_ms_);
  last_signal_ms_ = now_ms;
  if (!adaptive()) return std::nullopt;
  const uint32_t from = connection_limit();
  std::string why = "connection-limit signal";
  if (probing_ && now_ms - last_probe_ms_ < probe_interval()) {
    learned_.probe_interval_ms =
        std::min<int64_t>(tuning_.max_probe_interval.count(), probe_interval() * 2);
    why += " (probe refused; next probe after " +
           config::format_duration(config::Duration(learned_.probe_interval_ms)) + ")";
  }
  probing_ = false;
  const uint32_t to = std::clamp<uint32_t>(working, 1, std::max<uint32_t>(1, from));
  learned_.connection_limit = to;
  learned_.updated_ms = now_ms;
  if (to == from) return std::nullopt;
  return Change{"connection_limit", std::to_string(from), std::to_string(to), why};
}

std::optional<Change> Controller::on_rate_limit(int64_t now_ms, double delivered_per_second) {
  if (!adaptive()) return std::nullopt;
  // A burst of refusals is one signal.
  if (last_rate_signal_ms_ > 0 && now_ms - last_rate_signal_ms_ < tuning_.hold.count())
    return std::nullopt;
  last_rate_signal_ms_ = now_ms;
  const double from = message_rate();
  double base = delivered_per_second > 0 ? delivered_per_second : from;
  if (from > 0) base = std::min(base, from);
  const double to = base > 0 ? std::max(0.1, base * 0.8) : 1.0;
  learned_.message_rate = to;
  learned_.updated_ms = now_ms;
  // The next message waits a full interval: the receiver just said "too fast".
  next_message_ms_ = std::max(next_message_ms_, static_cast<double>(now_ms) + 1000.0 / to);
  return Change{"message_rate", rate_str(from), rate_str(to), "rate-limit signal"};
}

std::optional<Change> Controller::on_deliveries_limit(int64_t now_ms,
                                                      uint32_t delivered_on_connection) {
  if (delivered_on_connection == 0) {
    // Refused on a connection's first message: no count to learn; hold like a connection limit
    // so that nothing reconnects at once.
    if (now_ms >= hold_until_ms_ && last_signal_ms_ > 0)
      hold_ms_ = std::min<int64_t>(tuning_.max_hold.count(), std::max<int64_t>(1, hold_ms_) * 2);
    hold_until_ms_ = std::max(hold_until_ms_, now_ms + hold_ms_);
    last_signal_ms_ = now_ms;
  }
  if (!adaptive()) return std::nullopt;
  last_deliveries_signal_ms_ = now_ms;
  const uint32_t from = max_deliveries();
  const uint32_t to = std::clamp<uint32_t>(delivered_on_connection, 1, from);
  if (to == from) return std::nullopt;
  learned_.max_deliveries = to;
  learned_.updated_ms = now_ms;
  return Change{"max_deliveries", std::to_string(from), std::to_string(to),
                "deliveries-per-connection signal"};
}

std::optional<Change> Controller::on_reputation(int64_t now_ms, const std::string& reason) {
  if (suspended(now_ms)) return std::nullopt;  // already: one signal per suspension
  const int64_t base = tuning_.suspend.count();
  int64_t length = base;
  for (uint32_t i = 0; i < learned_.suspensions && length < tuning_.max_suspend.count(); ++i)
    length *= 2;
  length = std::min<int64_t>(length, tuning_.max_suspend.count());
  ++learned_.suspensions;
  learned_.suspended_until_ms = now_ms + length;
  learned_.suspend_reason = reason;
  learned_.updated_ms = now_ms;
  return Change{"suspension", "", config::format_duration(config::Duration(length)), reason};
}

std::optional<Change> Controller::tick(int64_t now_ms, bool waiting, bool connections_full) {
  if (!adaptive()) return std::nullopt;
  const int64_t decay = tuning_.decay.count();
  // Decay: a key that has had no signal for a while drifts back toward probing.
  if (now_ms - last_decay_ms_ >= decay) {
    last_decay_ms_ = now_ms;
    if (now_ms - last_signal_ms_ >= decay && now_ms - learned_.updated_ms >= decay) {
      if (!suspended(now_ms)) learned_.suspensions = 0;
      learned_.probe_interval_ms = learned_.probe_interval_ms / 2;
      if (learned_.probe_interval_ms < tuning_.probe_interval.count())
        learned_.probe_interval_ms = 0;
      if (learned_.connection_limit > 0 && learned_.connection_limit < limits_.connection_limit) {
        const uint32_t from = learned_.connection_limit++;
        learned_.updated_ms = now_ms;
        return Change{"connection_limit", std::to_string(from),
                      std::to_string(learned_.connection_limit), "decay: no signal for a while"};
      }
    }
  }
  if (probing_ && now_ms - last_probe_ms_ >= probe_interval()) probing_ = false;  // it held
  if (!waiting || now_ms < hold_until_ms_ || suspended(now_ms)) return std::nullopt;
  if (learned_.message_rate > 0 &&
      now_ms - std::max(last_rate_signal_ms_, last_rate_probe_ms_) >= probe_interval()) {
    const double from = learned_.message_rate;
    last_rate_probe_ms_ = now_ms;
    learned_.message_rate *= 1.1;
    learned_.updated_ms = now_ms;
    if (limits_.max_message_rate.limited() &&
        learned_.message_rate >= limits_.max_message_rate.per_second())
      learned_.message_rate = 0;  // back at the configured maximum: nothing learned
    return Change{"message_rate", rate_str(from), rate_str(message_rate()),
                  "probe after " + config::format_duration(config::Duration(probe_interval())) +
                      " without a signal"};
  }
  // A learned deliveries-per-connection limit is probed back up, doubling after each clean
  // interval: one learned from a refusal of a connection's first message is 1, and would
  // otherwise stay 1 for as long as the site is busy.
  if (learned_.max_deliveries > 0 &&
      now_ms - std::max(last_deliveries_signal_ms_, last_deliveries_probe_ms_) >=
          probe_interval()) {
    const uint32_t from = learned_.max_deliveries;
    last_deliveries_probe_ms_ = now_ms;
    learned_.max_deliveries = from >= limits_.max_deliveries_per_connection / 2 ? 0 : from * 2;
    learned_.updated_ms = now_ms;
    return Change{"max_deliveries", std::to_string(from), std::to_string(max_deliveries()),
                  "probe after " + config::format_duration(config::Duration(probe_interval())) +
                      " without a signal"};
  }
  if (!connections_full || in_slow_start()) return std::nullopt;
  const int64_t quiet_since = std::max(last_signal_ms_, last_probe_ms_);
  if (now_ms - quiet_since < probe_interval()) return std::nullopt;
  if (learned_.connection_limit >= limits_.connection_limit) return std::nullopt;
  const uint32_t from = learned_.connection_limit++;
  last_probe_ms_ = now_ms;
  probing_ = true;
  learned_.updated_ms = now_ms;
  return Change{"connection_limit", std::to_string(from), std::to_string(from + 1),
                "probe after " + config::format_duration(config::Duration(probe_interval())) +
                    " without a signal"};
}

}  // namespace sluice::shaping
