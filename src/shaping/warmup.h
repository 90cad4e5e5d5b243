// One source's warm-up: how many messages it may send today and this hour to each provider, by
// the day of its warm-up ([source.NAME] warmup = "SCHEDULE"; caps in etc/warmup.toml), and how
// many it has sent. Days and hours are UTC; day 1 is the day of the source's start (its
// warmup_start, else its first message). Counts are per provider ("" for sites of no known
// provider): each provider judges the new address on what it sees.
// Pure, on the time given (warmup_test.cpp); the dispatcher owns one per warming source, asks
// wait() before a lane takes a message, count()s it when taken, and keeps encode() in the spool
// database so that a restart does not reset the counts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sluice::shaping {

class Warmup {
 public:
  static constexpr int64_t kDayMs = 86'400'000;
  static constexpr int64_t kHourMs = 3'600'000;

  // `start_ms`: day 1 (any time in that UTC day).
  Warmup(config::WarmupSchedule schedule, int64_t start_ms)
      : schedule_(std::move(schedule)), start_day_(start_ms / kDayMs) {}

  // 1 on the first day.
  uint32_t day(int64_t now_ms) const;
  int64_t start_ms() const { return start_day_ * kDayMs; }
  // Past the schedule's last day for every provider: no caps any more.
  bool warmed(int64_t now_ms) const;

  struct Caps {
    uint64_t daily = 0;   // 0: none
    uint64_t hourly = 0;  // 0: none
  };
  Caps caps(std::string_view provider, int64_t now_ms) const;
  // 0 when one more message may go to the provider now; else how long until a cap resets.
  int64_t wait(std::string_view provider, int64_t now_ms) const;
  // One message was handed to a connection.
  void count(std::string_view provider, int64_t now_ms);

  struct Count {
    int64_t day = 0, hour = 0;  // the UTC day and hour they count in (since the epoch)
    uint64_t today = 0, this_hour = 0;
  };
  // Today's counts (rolled over to now_ms: an old day counts 0).
  Count counted(std::string_view provider, int64_t now_ms) const;
  const std::map<std::string, Count>& counts() const { return counts_; }

  // "START_DAY;PROVIDER:DAY:HOUR:TODAY:THIS_HOUR;…" and back (restore keeps the persisted start
  // unless the configuration names one).
  std::string encode() const;
  bool restore(std::string_view s, bool keep_start);

 private:
  const config::WarmupCaps& caps_for(std::string_view provider) const;

  config::WarmupSchedule schedule_;
  int64_t start_day_;
  std::map<std::string, Count> counts_;
};

}  // namespace sluice::shaping
