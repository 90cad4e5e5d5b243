#include "smtp/xtext.h"

#include <gtest/gtest.h>

namespace sluice::smtp {
namespace {

TEST(Xtext, DecodesHexcharsAndXchars) {
  // RFC 3461 section 4: "+" and "=" and characters outside "!".."~" travel as +HH.
  EXPECT_EQ(xtext_decode("QQ314159"), "QQ314159");
  EXPECT_EQ(xtext_decode("a+2Bb+3Dc"), "a+b=c");
  EXPECT_EQ(xtext_decode("Bob+20Smith"), "Bob Smith");
  EXPECT_EQ(xtext_decode("+2b"), "+");  // lower-case hex tolerated on input
  EXPECT_EQ(xtext_decode(""), "");
}

TEST(Xtext, RejectsInvalidXtext) {
  EXPECT_FALSE(xtext_decode("a=b"));
  EXPECT_FALSE(xtext_decode("a b"));
  EXPECT_FALSE(xtext_decode("+2"));
  EXPECT_FALSE(xtext_decode("+"));
  EXPECT_FALSE(xtext_decode("+zz"));
  EXPECT_FALSE(xtext_decode("\xc3\xa9"));
}

TEST(Xtext, EncodeRoundTrips) {
  const std::string all = [] {
    std::string s;
    for (int c = 0; c < 256; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  EXPECT_EQ(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_EQ(xtext_decode(xtext_encode(all)), all);
}

}  // namespace
}  // namespace sluice::smtp
