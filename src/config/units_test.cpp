#include "config/units.h"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

using std::chrono::milliseconds;

TEST(Units, Durations) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("30s"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300'000));
  EXPECT_EQ(parse_duration("1h30m"), milliseconds(5'400'000));
  EXPECT_EQ(parse_duration("5d"), milliseconds(432'000'000));
  EXPECT_EQ(parse_duration(" 0s "), milliseconds(0));
  for (auto bad : {"", "5", "s", "5x", "5 s", "-5s", "1.5s", "99999999999999999999d"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
  EXPECT_EQ(format_duration(milliseconds(5'400'250)), "1h30m250ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
}

TEST(Units, Sizes) {
  EXPECT_EQ(parse_size("1048576"), 1048576u);
  EXPECT_EQ(parse_size("50MB"), 50'000'000u);
  EXPECT_EQ(parse_size("512KiB"), 524'288u);
  EXPECT_EQ(parse_size("1gib"), 1'073'741'824u);
  EXPECT_EQ(parse_size("10B"), 10u);
  for (auto bad : {"", "MB", "10 XB", "1.5MB", "-1", "99999999999999999999GB"}) {
    EXPECT_FALSE(parse_size(bad)) << bad;
  }
}

}  // namespace
}  // namespace sluice::config
