#include "shaping/warmup.h"

#include <gtest/gtest.h>

namespace sluice::shaping {
namespace {

constexpr int64_t kDay = Warmup::kDayMs;
constexpr int64_t kHour = Warmup::kHourMs;
constexpr int64_t kStart = 20'000 * kDay;  // a UTC midnight

config::WarmupSchedule schedule() {
  config::WarmupSchedule s;
  s.name = "test";
  s.caps.daily = {20, 100, 1000};
  s.caps.hourly = {5};  // day 1: 5 an hour; later days: a tenth of the day's cap
  s.providers["microsoft"].daily = {10};
  return s;
}

TEST(Warmup, DaysCapsAndTheEndOfTheSchedule) {
  Warmup w(schedule(), kStart + 5 * kHour);
  EXPECT_EQ(w.day(kStart + 5 * kHour), 1u);
  EXPECT_EQ(w.day(kStart + kDay), 2u);
  EXPECT_EQ(w.caps("", kStart).daily, 20u);
  EXPECT_EQ(w.caps("", kStart).hourly, 5u);
  EXPECT_EQ(w.caps("gmail", kStart + kDay).daily, 100u);
  EXPECT_EQ(w.caps("gmail", kStart + kDay).hourly, 10u);
  EXPECT_EQ(w.caps("microsoft", kStart).daily, 10u);
  EXPECT_EQ(w.caps("microsoft", kStart + kDay).daily, 0u);  // its own ramp is over
  EXPECT_FALSE(w.warmed(kStart + 2 * kDay));
  EXPECT_TRUE(w.warmed(kStart + 3 * kDay));
  EXPECT_EQ(w.caps("", kStart + 3 * kDay).daily, 0u);
}

TEST(Warmup, HourlyThenDailyCapsHoldAndResetOnTheirBoundaries) {
  Warmup w(schedule(), kStart);
  int64_t now = kStart + 30 * 60'000;  // 00:30
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(w.wait("", now), 0);
    w.count("", now);
  }
  EXPECT_EQ(w.wait("", now), 30 * 60'000);  // the hourly cap: until 01:00
  EXPECT_EQ(w.wait("gmail", now), 0);       // another provider has its own count
  for (int h = 1; h < 4; ++h) {
    now = kStart + h * kHour;
    for (int i = 0; i < 5; ++i) w.count("", now);
  }
  EXPECT_EQ(w.counted("", now).today, 20u);
  now = kStart + 10 * kHour;
  EXPECT_EQ(w.wait("", now), 14 * kHour);  // the daily cap: until midnight
  EXPECT_EQ(w.wait("", kStart + kDay), 0);  // day 2
  EXPECT_EQ(w.counted("", kStart + kDay).today, 0u);
}

TEST(Warmup, CountsSurviveEncodeAndRestore) {
  Warmup w(schedule(), kStart);
  for (int i = 0; i < 7; ++i) w.count("microsoft", kStart + 2 * kHour);
  w.count("", kStart + 3 * kHour);
  Warmup again(schedule(), kStart + 4 * kDay);  // a restart on another day, start not configured
  ASSERT_TRUE(again.restore(w.encode(), /*keep_start=*/false));
  EXPECT_EQ(again.start_ms(), kStart);
  EXPECT_EQ(again.counted("microsoft", kStart + 2 * kHour).today, 7u);
  EXPECT_EQ(again.counted("microsoft", kStart + 2 * kHour).this_hour, 7u);
  EXPECT_EQ(again.counted("", kStart + 5 * kHour).today, 1u);
  EXPECT_EQ(again.counted("", kStart + 5 * kHour).this_hour, 0u);
  Warmup configured(schedule(), kStart + kDay);
  ASSERT_TRUE(configured.restore(w.encode(), /*keep_start=*/true));
  EXPECT_EQ(configured.start_ms(), kStart + kDay);
  EXPECT_FALSE(configured.restore("garbage;x", false));
  EXPECT_FALSE(configured.restore("12;p:1:2", false));
}

}  // namespace
}  // namespace sluice::shaping
