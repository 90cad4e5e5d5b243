#include "core/text.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Text, CaseInsensitiveComparisonIgnoresLocale) {
  EXPECT_TRUE(iequals("MAIL", "mail"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("MAIL", "MAI"));
  EXPECT_FALSE(iequals("\xc9", "\xe9"));  // Latin-1 É/é are not ASCII: never folded
  EXPECT_TRUE(istarts_with("From:<a@b>", "FROM:"));
  EXPECT_FALSE(istarts_with("FRO", "FROM:"));
}

TEST(Text, ParseU64RejectsSignsSpacesAndOverflow) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(parse_u64("18446744073709551616"));
  EXPECT_FALSE(parse_u64(""));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_FALSE(parse_u64(" 1"));
  EXPECT_FALSE(parse_u64("1x"));
}

TEST(Text, TrimAndPrintable) {
  EXPECT_EQ(trim(" \tabc \t"), "abc");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(printable("a\r\n\x01\xff"), "a\\x0d\\x0a\\x01\\xff");
}

}  // namespace
TEST(Text, HtmlEscapeCoversTextAndAttributes) {
  EXPECT_EQ(html_escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
}

}  // namespace sluice
