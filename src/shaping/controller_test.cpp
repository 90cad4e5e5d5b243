#include "shaping/controller.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

namespace sluice::shaping {
namespace {

using config::Duration;

// A receiver that refuses a connection (at the banner) from an IP that already has limit(t)
// connections open, and a sender driven by the controller, on a fake clock in 10 ms steps.
// Connections take 20 ms to reach the banner, deliver 2 messages per step, close after
// max_deliveries, and are replaced at once while the controller allows: the sender always has
// messages waiting (the hardest case: it always wants more connections).
struct Outcome {
  int64_t attempts = 0, refused = 0;
  int64_t late_attempts = 0, late_refused = 0;  // from `late_from` on
  int64_t delivered = 0, late_delivered = 0;
  uint32_t max_open = 0;
  uint32_t final_limit = 0;
};

Outcome simulate(Controller& c, const std::function<uint32_t(int64_t)>& limit, int64_t duration_ms,
                 int64_t late_from_ms) {
  struct Conn {
    int64_t ready_at;
    bool established;
    uint32_t delivered;
  };
  std::vector<Conn> conns;
  Outcome r;
  const int64_t t0 = 1'000'000;  // any epoch
  for (int64_t t = t0; t < t0 + duration_ms; t += 10) {
    const bool late = t - t0 >= late_from_ms;
    // Set-up completes: the receiver counts the connections it has open.
    uint32_t established = 0;
    for (const Conn& k : conns) established += k.established;
    for (size_t i = 0; i < conns.size();) {
      Conn& k = conns[i];
      if (k.established || k.ready_at > t) {
        ++i;
        continue;
      }
      if (established >= limit(t - t0)) {
        ++r.refused;
        if (late) ++r.late_refused;
        conns.erase(conns.begin() + static_cast<ptrdiff_t>(i));
        c.on_connection_limit(t, established);
        continue;
      }
      k.established = true;
      ++established;
      c.on_connected(t, established);
      ++i;
    }
    // Deliveries; a connection that has made its deliveries closes.
    for (size_t i = 0; i < conns.size();) {
      Conn& k = conns[i];
      if (k.established) {
        k.delivered += 2;
        r.delivered += 2;
        if (late) r.late_delivered += 2;
        if (k.delivered >= c.max_deliveries()) {
          conns.erase(conns.begin() + static_cast<ptrdiff_t>(i));
          continue;
        }
      }
      ++i;
    }
    const auto open = static_cast<uint32_t>(conns.size());
    c.tick(t, /*waiting=*/true, open >= c.connection_limit());
    while (c.may_open(t, static_cast<uint32_t>(conns.size()))) {
      c.opened(t);
      conns.push_back(Conn{t + 20, false, 0});
      ++r.attempts;
      if (late) ++r.late_attempts;
    }
    r.max_open = std::max(r.max_open, static_cast<uint32_t>(conns.size()));
  }
  r.final_limit = c.connection_limit();
  return r;
}

config::ShapingLimits limits(uint32_t max, bool adaptive = true) {
  config::ShapingLimits l;
  l.connection_limit = max;
  l.adaptive = adaptive;
  return l;
}

// A key whose slow start has reached the maximum, decaying one step per hour.
config::ShapingTuning warm_tuning() {
  config::ShapingTuning tuning;
  tuning.initial_connections = 32;
  tuning.decay = Duration(3'600'000);
  return tuning;
}

TEST(Controller, ConvergesToAnUnknownLimitForEveryNFrom1To100) {
  const config::ShapingTuning tuning;
  for (uint32_t n = 1; n <= 100; ++n) {
    Controller c(limits(200), tuning, 0);
    const Outcome r = simulate(
        c, [n](int64_t) { return n; }, 300'000, 30'000);
    SCOPED_TRACE("N = " + std::to_string(n));
    // Holds at N, or N + 1 while a probe is out.
    EXPECT_GE(r.final_limit, n);
    EXPECT_LE(r.final_limit, n + 1);
    // After 30 s at most 1% of connection attempts are refused.
    ASSERT_GT(r.late_attempts, 0);
    EXPECT_LE(r.late_refused * 100, r.late_attempts) << r.late_refused << "/" << r.late_attempts;
    // Throughput after 30 s: at least 95% of an oracle that holds exactly N connections
    // (each delivering 2 per 10 ms step, less the 20 ms set-up per connection of 100).
    Controller oracle(limits(n, false), tuning, 0);
    const Outcome o = simulate(
        oracle, [n](int64_t) { return n; }, 300'000, 30'000);
    EXPECT_EQ(o.refused, 0);
    EXPECT_GE(r.late_delivered * 100, o.late_delivered * 95)
        << r.late_delivered << " vs oracle " << o.late_delivered;
  }
}

TEST(Controller, FollowsALimitThatDrops) {
  const config::ShapingTuning tuning;
  Controller c(limits(32), tuning, 0);
  // 20 at first, 5 from 60 s on.
  const Outcome r = simulate(
      c, [](int64_t t) { return t < 60'000 ? 20u : 5u; }, 300'000, 90'000);
  EXPECT_GE(r.final_limit, 5u);
  EXPECT_LE(r.final_limit, 6u);
  EXPECT_LE(r.late_refused * 100, r.late_attempts) << r.late_refused << "/" << r.late_attempts;
}

TEST(Controller, NoReconnectStormWhenEveryConnectionIsRefused) {
  const config::ShapingTuning tuning;  // hold 1 s doubling to 60 s
  Controller c(limits(32), tuning, 0);
  const Outcome r = simulate(
      c, [](int64_t) { return 0u; }, 600'000, 0);
  EXPECT_EQ(r.delivered, 0);
  // 1 s, 2 s, 4 s … 60 s holds: about 16 attempts in 10 minutes, never a burst.
  EXPECT_LE(r.attempts, 20);
  EXPECT_LE(r.max_open, 2u);  // the slow-start start, then one at a time
  EXPECT_EQ(r.final_limit, 1u);
}

// A dead destination: every connection fails before it works and nothing else is open. The
// site gets one probe at a time, 10 s, 20 s, 40 s … apart (up to max_dead_probe), and the first
// probe that works ends it.
TEST(Controller, UnavailableSiteGetsOneProbeAtATimeOnABackoff) {
  const config::ShapingTuning tuning;  // dead_probe 10 s, max_dead_probe 5 min
  Controller c(limits(32), tuning, 0);
  int64_t t = 0;
  std::vector<int64_t> probes;
  // Down for 10 minutes: a connection is tried whenever the controller allows one, and fails.
  for (; t < 600'000; t += 100) {
    if (!c.may_open(t, 0)) continue;
    probes.push_back(t);
    c.opened(t);
    if (probes.size() > 1) {
      EXPECT_FALSE(c.may_open(t, 1)) << "a second connection while probing";
    }
    ASSERT_TRUE(c.on_unavailable(t + 50)) << "every failed probe lengthens the wait";
    EXPECT_TRUE(c.unavailable());
  }
  // 0, 10, 30, 70, 150, 310 s, then every 300 s: 7 attempts in 10 minutes, not one per message.
  ASSERT_GE(probes.size(), 2u);
  EXPECT_LE(probes.size(), 8u);
  EXPECT_NEAR(static_cast<double>(probes[1] - probes[0]), 10'050, 200);
  for (size_t i = 2; i < probes.size(); ++i)
    EXPECT_LE(probes[i] - probes[i - 1], 300'100) << "waits stop doubling at max_dead_probe";
  // A second failure of the same cohort (a connection set up alongside) changes nothing.
  EXPECT_FALSE(c.on_unavailable(t + 60));
  // The site comes back: the next probe works, and the site opens as before.
  while (!c.may_open(t, 0)) t += 100;
  auto back = c.on_connected(t, 1);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->why, "site available: a probe works");
  EXPECT_FALSE(c.unavailable());
  EXPECT_TRUE(c.may_open(t, 1));
}

TEST(Controller, OracleHoldsExactlyTheConfiguredLimit) {
  Controller c(limits(7, false), config::ShapingTuning{}, 0);
  EXPECT_EQ(c.connection_limit(), 7u);
  const Outcome r = simulate(
      c, [](int64_t) { return 7u; }, 60'000, 0);
  EXPECT_EQ(r.max_open, 7u);
  EXPECT_EQ(r.refused, 0);
  EXPECT_EQ(c.connection_limit(), 7u);
}

TEST(Controller, NeverExceedsTheConfiguredMaximum) {
  Controller c(limits(10), config::ShapingTuning{}, 0);
  const Outcome r = simulate(
      c, [](int64_t) { return 50u; }, 120'000, 0);
  EXPECT_EQ(r.refused, 0);
  EXPECT_EQ(r.max_open, 10u);
  EXPECT_EQ(c.connection_limit(), 10u);
}

TEST(Controller, SlowStartBeginsSmallAndGrowsWithWorkingConnections) {
  config::ShapingTuning tuning;
  tuning.initial_connections = 2;
  Controller c(limits(32), tuning, 0);
  EXPECT_TRUE(c.in_slow_start());
  EXPECT_EQ(c.connection_limit(), 2u);
  auto ch = c.on_connected(10, 1);
  ASSERT_TRUE(ch);
  EXPECT_EQ(ch->from, "2");
  EXPECT_EQ(ch->to, "3");
  EXPECT_EQ(c.connection_limit(), 3u);
}

TEST(Controller, SignalHoldsNewConnectionsAndFailedProbesLengthenTheInterval) {
  config::ShapingTuning tuning;
  tuning.initial_connections = 32;  // as if slow start had reached the maximum
  tuning.hold = Duration(1000);
  tuning.probe_interval = Duration(30'000);
  Controller c(limits(32), tuning, 0);
  auto ch = c.on_connection_limit(1000, 4);
  ASSERT_TRUE(ch);
  EXPECT_EQ(ch->to, "4");
  EXPECT_FALSE(c.may_open(1500, 3));  // held
  EXPECT_EQ(c.reopen_at_ms(1500), 2000);
  EXPECT_TRUE(c.may_open(2000, 3));
  EXPECT_FALSE(c.may_open(2000, 4));  // at the limit
  // No probe before 30 s of quiet, one after.
  EXPECT_FALSE(c.tick(20'000, true, true));
  auto probe = c.tick(31'000, true, true);
  ASSERT_TRUE(probe);
  EXPECT_EQ(c.connection_limit(), 5u);
  // The probe is refused: back to 4, and the next probe waits twice as long.
  c.on_connection_limit(31'100, 4);
  EXPECT_EQ(c.connection_limit(), 4u);
  EXPECT_EQ(c.learned().probe_interval_ms, 60'000);
  EXPECT_FALSE(c.tick(31'100 + 59'000, true, true));
  EXPECT_TRUE(c.tick(31'100 + 60'000, true, true));
  // No probing while connections are not all busy.
  Controller idle(limits(32), tuning, 0);
  idle.on_connection_limit(0, 3);
  EXPECT_FALSE(idle.tick(100'000, true, false));
}

TEST(Controller, ConnectionsSetUpBeforeTheSignalRaiseTheLearnedLimit) {
  Controller c(limits(32), config::ShapingTuning{}, 0);
  c.on_connection_limit(100, 3);     // 3 were working when the refusal came
  auto ch = c.on_connected(110, 5);  // two more, set up before it, work
  ASSERT_TRUE(ch);
  EXPECT_EQ(c.connection_limit(), 5u);
}

TEST(Controller, RateLimitSignalSetsTheRateBelowWhatWasDeliveredAndSpacesMessages) {
  config::ShapingTuning tuning;
  tuning.probe_interval = Duration(10'000);
  Controller c(limits(32), tuning, 0);
  EXPECT_EQ(c.take_message(0), 0);  // unlimited
  auto ch = c.on_rate_limit(1000, 100.0);
  ASSERT_TRUE(ch);
  EXPECT_DOUBLE_EQ(c.message_rate(), 80.0);
  // A burst of refusals is one signal.
  EXPECT_FALSE(c.on_rate_limit(1100, 50.0));
  // Messages go 12.5 ms apart.
  int64_t t = 2000, sent = 0;
  for (int i = 0; i < 1000; ++i, t += 1) sent += c.take_message(t) == 0;
  EXPECT_NEAR(static_cast<double>(sent), 80.0, 1.0);
  // Probing raises the rate by 10% after a clean interval while messages wait.
  EXPECT_TRUE(c.tick(1000 + 10'000, true, false));
  EXPECT_NEAR(c.message_rate(), 88.0, 0.01);
}

TEST(Controller, ConfiguredRateIsAMaximum) {
  auto l = limits(32);
  l.max_message_rate = config::Rate{10, Duration(1000)};
  Controller c(l, config::ShapingTuning{}, 0);
  int sent = 0;
  for (int64_t t = 0; t < 10'000; t += 5) sent += c.take_message(t) == 0;
  EXPECT_NEAR(sent, 100, 1);
}

TEST(Controller, ReputationSuspendsAndRepeatsDoubleUpToTheMaximum) {
  config::ShapingTuning tuning;
  tuning.suspend = Duration(600'000);
  tuning.max_suspend = Duration(1'800'000);
  Controller c(limits(32), tuning, 0);
  auto ch = c.on_reputation(0, "421 4.7.0 [TS01] deferred");
  ASSERT_TRUE(ch);
  EXPECT_TRUE(c.suspended(599'999));
  EXPECT_FALSE(c.may_open(1000, 0));
  EXPECT_EQ(c.reopen_at_ms(1000), 600'000);
  EXPECT_FALSE(c.on_reputation(1000, "again"));  // already suspended
  EXPECT_FALSE(c.suspended(600'000));
  c.on_reputation(600'000, "again");
  EXPECT_EQ(c.suspended_until_ms(), 600'000 + 1'200'000);
  c.on_reputation(1'800'000, "again");
  EXPECT_EQ(c.suspended_until_ms(), 1'800'000 + 1'800'000);  // capped
}

TEST(Controller, DeliveriesPerConnectionLearnedFromTheSignal) {
  Controller c(limits(32), config::ShapingTuning{}, 0);
  EXPECT_EQ(c.max_deliveries(), 100u);
  ASSERT_TRUE(c.on_deliveries_limit(0, 20));
  EXPECT_EQ(c.max_deliveries(), 20u);
  EXPECT_TRUE(c.may_open(0, 0));  // something was delivered: no hold
  // Refused on the first message of a connection: a hold, doubling, never a reconnect loop.
  c.on_deliveries_limit(10'000, 0);
  EXPECT_FALSE(c.may_open(10'500, 0));
  EXPECT_TRUE(c.may_open(11'000, 0));
  c.on_deliveries_limit(11'000, 0);
  EXPECT_FALSE(c.may_open(12'500, 0));
  EXPECT_TRUE(c.may_open(13'000, 0));
}

TEST(Controller, DeliveriesPerConnectionIsProbedBackUpWhileTheSiteStaysBusy) {
  config::ShapingTuning tuning;
  tuning.probe_interval = Duration(10'000);
  Controller c(limits(32), tuning, 0);
  c.on_deliveries_limit(0, 0);  // refused on a connection's first message: 1
  EXPECT_EQ(c.max_deliveries(), 1u);
  EXPECT_FALSE(c.tick(5'000, true, false));  // not yet a clean interval
  int64_t t = 10'000;
  std::vector<uint32_t> seen;
  for (int i = 0; i < 10 && c.learned().max_deliveries > 0; ++i, t += 10'000) {
    auto ch = c.tick(t, true, false);
    ASSERT_TRUE(ch);
    EXPECT_EQ(ch->what, "max_deliveries");
    seen.push_back(c.max_deliveries());
  }
  EXPECT_EQ(seen, (std::vector<uint32_t>{2, 4, 8, 16, 32, 64, 100}));  // then the configured 100
  // A new signal sets it again, and the probing starts over from there.
  c.on_deliveries_limit(t, 10);
  EXPECT_EQ(c.max_deliveries(), 10u);
  EXPECT_FALSE(c.tick(t + 5'000, true, false));
  ASSERT_TRUE(c.tick(t + 10'000, true, false));
  EXPECT_EQ(c.max_deliveries(), 20u);
}

TEST(Controller, LearnedStateRoundTripsAndDecaysWhileAway) {
  const config::ShapingTuning tuning = warm_tuning();
  Controller c(limits(32), tuning, 0);
  c.on_connection_limit(1000, 4);
  c.on_rate_limit(1000, 50);
  c.on_reputation(2000, "421 4.7.0 [TS01] deferred due to user complaints");
  const std::string enc = c.learned().encode();
  auto back = Learned::decode(enc);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->connection_limit, 4u);
  EXPECT_DOUBLE_EQ(back->message_rate, 40.0);
  EXPECT_EQ(back->suspend_reason, "421 4.7.0 [TS01] deferred due to user complaints");
  EXPECT_EQ(back->suspended_until_ms, c.suspended_until_ms());
  EXPECT_FALSE(Learned::decode("v2 1 2 3"));
  EXPECT_FALSE(Learned::decode("v1 x 0 0 0 0 0 0 "));

  // A restart right away keeps what was learned.
  Controller now(limits(32), tuning, 0);
  now.restore(*back, 3000);
  EXPECT_EQ(now.connection_limit(), 4u);
  EXPECT_TRUE(now.suspended(3000));
  // Two hours later: two steps of decay.
  Controller later(limits(32), tuning, 0);
  later.restore(*back, 2000 + 2 * 3'600'000);
  EXPECT_EQ(later.connection_limit(), 6u);
  // A day later: back to slow start, the learned rate forgotten.
  Controller day(limits(32), tuning, 0);
  day.restore(*back, 2000 + 30 * 3'600'000);
  EXPECT_TRUE(day.in_slow_start());
  EXPECT_EQ(day.message_rate(), 0.0);
  // Years away: nothing overflows.
  Controller years(limits(32), tuning, 0);
  years.restore(*back, 2000 + 40'000LL * 3'600'000);
  EXPECT_EQ(years.message_rate(), 0.0);
  EXPECT_EQ(years.learned().probe_interval_ms, 0);
}

TEST(Controller, LiveDecayRaisesTheLimitAfterQuietHours) {
  const config::ShapingTuning tuning = warm_tuning();
  Controller c(limits(32), tuning, 0);
  c.on_connection_limit(0, 3);
  // Not waiting for anything (no probing), but decay still moves it.
  auto ch = c.tick(3'600'000, false, false);
  ASSERT_TRUE(ch);
  EXPECT_EQ(c.connection_limit(), 4u);
}

}  // namespace
}  // namespace sluice::shaping
