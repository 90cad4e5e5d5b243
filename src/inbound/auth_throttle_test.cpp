#include "inbound/auth_throttle.h"

#include <gtest/gtest.h>

namespace sluice::inbound {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

TEST(AuthThrottle, LocksAnAddressOutAfterItsFailuresUntilTheWindowEnds) {
  AuthThrottle t(3, minutes(10));
  const auto t0 = AuthThrottle::Clock::time_point{} + minutes(100);
  EXPECT_TRUE(t.allowed("192.0.2.1", t0));
  EXPECT_FALSE(t.failed("192.0.2.1", t0));
  EXPECT_FALSE(t.failed("192.0.2.1", t0 + seconds(1)));
  EXPECT_TRUE(t.allowed("192.0.2.1", t0 + seconds(2)));
  EXPECT_TRUE(t.failed("192.0.2.1", t0 + seconds(2)));  // the third: locked out now
  EXPECT_FALSE(t.allowed("192.0.2.1", t0 + seconds(3)));
  EXPECT_FALSE(t.allowed("192.0.2.1", t0 + minutes(9)));
  EXPECT_TRUE(t.allowed("192.0.2.2", t0 + seconds(3)));  // others are not affected
  EXPECT_TRUE(t.allowed("192.0.2.1", t0 + minutes(10)));  // the window ended
  EXPECT_EQ(t.tracked(), 0u);
}

TEST(AuthThrottle, ASuccessForgetsEarlierFailures) {
  AuthThrottle t(2, minutes(10));
  const auto t0 = AuthThrottle::Clock::time_point{} + minutes(100);
  t.failed("192.0.2.1", t0);
  t.succeeded("192.0.2.1");
  EXPECT_FALSE(t.failed("192.0.2.1", t0 + seconds(1)));
  EXPECT_TRUE(t.allowed("192.0.2.1", t0 + seconds(1)));
}

TEST(AuthThrottle, ManyAddressesNeverGrowTheTableBeyondItsBound) {
  AuthThrottle t(5, minutes(10), 100);
  const auto t0 = AuthThrottle::Clock::time_point{} + minutes(100);
  for (int i = 0; i < 10'000; ++i) t.failed("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t0 + seconds(i));
  EXPECT_LE(t.tracked(), 100u);
}

}  // namespace
}  // namespace sluice::inbound
