#include "queue/schedule.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::queue {
namespace {

config::QueueConfig defaults() {
  return config::QueueConfig{};
}  // 5m, 1h, 5d

TEST(ScheduledQueue, PopsInDueOrderOnlyWhenDue) {
  ScheduledQueue q;
  q.push(300, 3);
  q.push(100, 1);
  q.push(200, 2);
  EXPECT_EQ(q.next_due(), 100);
  EXPECT_FALSE(q.pop_due(99));
  EXPECT_EQ(q.pop_due(250), 1u);
  EXPECT_EQ(q.pop_due(250), 2u);
  EXPECT_FALSE(q.pop_due(250));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.pop_due(1000), 3u);
  EXPECT_FALSE(q.next_due());
}

TEST(ScheduledQueue, AMillionDeferredMessagesCostSixteenBytesEach) {
  ScheduledQueue q;
  for (uint64_t i = 0; i < 1'000'000; ++i) q.push(int64_t(i % 977) * 1000, i);
  EXPECT_EQ(q.size(), 1'000'000u);
  EXPECT_LE(q.capacity_bytes(), 2 * 16 * 1'000'000u);  // vector growth at most doubles
}

TEST(Backoff, DoublesFromTheMinimumUpToTheMaximum) {
  const auto q = defaults();
  // unit_random 0.5 gives a jitter factor of exactly 1.
  EXPECT_EQ(backoff_ms(q, 1, 0.5), 300'000);
  EXPECT_EQ(backoff_ms(q, 2, 0.5), 600'000);
  EXPECT_EQ(backoff_ms(q, 3, 0.5), 1'200'000);
  EXPECT_EQ(backoff_ms(q, 4, 0.5), 2'400'000);
  EXPECT_EQ(backoff_ms(q, 5, 0.5), 3'600'000);
  EXPECT_EQ(backoff_ms(q, 50, 0.5), 3'600'000);
}

TEST(Backoff, JitterStaysWithinTwentyPercent) {
  const auto q = defaults();
  EXPECT_EQ(backoff_ms(q, 1, 0.0), 240'000);
  EXPECT_EQ(backoff_ms(q, 1, 0.999999), 359'999);
  EXPECT_EQ(backoff_ms(q, 1, 7.0), 360'000);  // clamped
}

TEST(Backoff, ExpiryAfterMaxAge) {
  const auto q = defaults();
  const int64_t received = 1'000'000;
  EXPECT_EQ(next_attempt_ms(q, received, 1, received + 1000, 0.5), received + 1000 + 300'000);
  // Close to the end of life: the last attempt happens at the expiry time, not after it.
  const int64_t late = received + q.max_age.count() - 10'000;
  EXPECT_EQ(next_attempt_ms(q, received, 30, late, 0.5), received + q.max_age.count());
  EXPECT_FALSE(next_attempt_ms(q, received, 31, received + q.max_age.count(), 0.5));
}

TEST(FairSchedule, TenantsAreServedInTurnAndABlasterStopsAtItsCap) {
  FairSchedule s(3);
  for (spool::MessageId id = 1; id <= 100; ++id) s.push("blaster", 10, id);
  s.push("quiet", 50, 1000);
  EXPECT_EQ(s.size(), 101u);
  EXPECT_EQ(s.next_due(), 10);
  std::vector<std::string> order;
  while (auto m = s.pop_due(60)) {
    order.push_back(m->second);
    s.started(m->second);
  }
  // The quiet tenant's message is second, not 101st; the blaster stops at its cap of 3.
  EXPECT_EQ(order, (std::vector<std::string>{"blaster", "quiet", "blaster", "blaster"}));
  EXPECT_FALSE(s.may_start("blaster"));
  EXPECT_FALSE(s.next_due().has_value());  // nothing due that may start: no busy timer
  s.finished("blaster");
  EXPECT_EQ(s.next_due(), 10);
  auto m = s.pop_due(60);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->second, "blaster");
  EXPECT_EQ(s.size(), 96u);
}

TEST(FairSchedule, NothingIsPoppedBeforeItIsDue) {
  FairSchedule s(10);
  s.push("", 100, 1);
  EXPECT_FALSE(s.pop_due(99).has_value());
  EXPECT_EQ(s.pop_due(100)->first, 1u);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.next_due().has_value());
}

TEST(FairSchedule, PriorityTenantsStartFirst) {
  FairSchedule s(100, {"receipts"});
  for (spool::MessageId id = 1; id <= 5; ++id) s.push("blaster", 10, id);
  s.push("receipts", 20, 100);
  s.push("receipts", 30, 101);
  EXPECT_EQ(s.pop_due(50)->first, 100u);
  EXPECT_EQ(s.pop_due(50)->first, 101u);
  EXPECT_EQ(s.pop_due(50)->second, "blaster");
}

}  // namespace
}  // namespace sluice::queue
