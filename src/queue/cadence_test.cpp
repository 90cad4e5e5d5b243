#include "queue/cadence.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace sluice::queue {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;

config::Campaign windowed(std::string name, config::Duration window) {
  config::Campaign c;
  c.name = std::move(name);
  c.window = window;
  return c;
}

// Runs the cadence as the manager's timer would (waking at each next_release; 0 is "now"), on
// made-up time from `now_ms`, until nothing waits before until_ms; returns each release time.
std::vector<int64_t> run(Cadence& c, int64_t now_ms, int64_t until_ms) {
  std::vector<int64_t> times;
  for (auto at = c.next_release(); at && *at <= until_ms; at = c.next_release()) {
    now_ms = std::max(now_ms, *at);
    for (size_t n = c.release(now_ms).size(); n > 0; --n) times.push_back(now_ms);
  }
  return times;
}

TEST(Cadence, ABurstIsSpreadEvenlyOverAnHourWindow) {
  Cadence c({{"spring", windowed("spring", hours(1))}});
  const int64_t t0 = 1'000'000;
  EXPECT_EQ(c.hold("spring", 1, t0), t0);  // the first message opens the window
  for (spool::MessageId id = 2; id <= 6000; ++id) EXPECT_EQ(c.hold("spring", id, t0), 0);
  const auto times = run(c, t0, t0 + 2 * kHour);
  ASSERT_EQ(times.size(), 6000u);
  // The per-minute histogram: 100 in every minute of the hour, none after.
  std::map<int64_t, int> per_minute;
  for (int64_t t : times) ++per_minute[(t - t0) / kMinute];
  ASSERT_EQ(per_minute.size(), 60u);
  for (const auto& [minute, n] : per_minute) EXPECT_EQ(n, 100) << "minute " << minute;
  EXPECT_EQ(c.waiting(), 0u);
}

TEST(Cadence, MessagesArrivingLaterShareWhatIsLeftOfTheWindow) {
  Cadence c({{"c", windowed("c", minutes(10))}});
  for (spool::MessageId id = 1; id <= 10; ++id) c.hold("c", id, 0);
  const auto first = run(c, 0, 5 * kMinute - 1);  // half the window: half of them
  EXPECT_EQ(first.size(), 5u);
  for (spool::MessageId id = 11; id <= 20; ++id) c.hold("c", id, 5 * kMinute);
  const auto rest = run(c, 5 * kMinute, 30 * kMinute);
  ASSERT_EQ(rest.size(), 15u);
  EXPECT_LT(rest.back(), 10 * kMinute);  // all within the window
}

TEST(Cadence, ARateReleasesOneMessagePerInterval) {
  config::Campaign drip;
  drip.name = "drip";
  drip.rate.count = 60;
  drip.rate.per = minutes(1);
  Cadence c({{"drip", drip}});
  for (spool::MessageId id = 1; id <= 5; ++id) c.hold("drip", id, 100);
  EXPECT_EQ(run(c, 100, 100'000), (std::vector<int64_t>{100, 1100, 2100, 3100, 4100}));
}

TEST(Cadence, AWindowThatHasPassedOpensANewOneAndARestoredStartIsKept) {
  Cadence c({{"c", windowed("c", minutes(1))}});
  c.restore("c", 10'000);
  EXPECT_TRUE(c.known("c"));
  EXPECT_EQ(c.hold("c", 1, 30'000), 0);  // inside the restored window
  EXPECT_EQ(run(c, 30'000, 30'000).size(), 1u);
  EXPECT_EQ(c.hold("c", 2, 120'000), 120'000);  // past its end (70 s): a new window
  EXPECT_FALSE(c.shaped("other"));
}

}  // namespace
}  // namespace sluice::queue
