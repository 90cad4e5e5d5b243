#include "core/utf8.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Utf8, AcceptsWellFormedSequences) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9"));          // é
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x93\xa7"));  // 📧
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_TRUE(is_ascii("abc"));
  EXPECT_FALSE(is_ascii("\xc3\xa9"));
}

TEST(Utf8, RejectsMalformedSequences) {
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_EQ(utf8_sequence_length("\xe2\x82\xac!"), 3u);
  EXPECT_EQ(utf8_sequence_length(""), 0u);
}


TEST(Utf8, PrefixNeverSplitsACharacter) {
  const std::string s = "ab\xc3\xa9\xe4\xb8\xad";  // "abé中"
  EXPECT_EQ(utf8_prefix(s, 10), s);
  EXPECT_EQ(utf8_prefix(s, 3), "ab");             // é would be cut in two
  EXPECT_EQ(utf8_prefix(s, 4), "ab\xc3\xa9");
  EXPECT_EQ(utf8_prefix(s, 6), "ab\xc3\xa9");     // 中 needs 3 octets
  EXPECT_EQ(utf8_prefix(s, 0), "");
}

}  // namespace
}  // namespace sluice
