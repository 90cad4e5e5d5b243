// Literal prefilters for the classifier's regular expressions. Every reply that is not a
// success runs through a few hundred rules and phrases; most of their patterns cannot match a
// given reply because a word they need is absent. A Prefilter holds literals of which every
// match of its pattern contains at least one; when a reply contains none of them, the pattern
// is not searched at all. Matching results are unchanged: the filter only skips searches that
// would fail (prefilter_test.cpp checks this over the whole reply corpus).
//
// Patterns are Perl syntax compiled case-insensitively (rule_file.cpp). The literals are
// lowered in ASCII, as FilterText lowers the reply; other bytes compare as they are, as the
// regex engine compares them. A pattern with syntax the extractor does not follow (named
// groups, inline flags, \Q…\E, conditionals) gets no filter: it is always searched.
//
// Constant after construction; safe to share between threads.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::classify {

// A reply's text as prefilters read it: ASCII letters lowered, and which 3-byte sequences it
// holds (hashed), so that most absent literals are rejected without a search.
class FilterText {
 public:
  explicit FilterText(std::string_view text);

  // The hash of the 3 bytes at p, and whether the text holds a sequence with that hash.
  static uint16_t gram(const char* p);
  bool has_gram(uint16_t g) const { return grams_.test(g); }
  // `literal` is lowered already (Prefilter's literals are).
  bool find(std::string_view literal) const { return lower_.find(literal) != std::string::npos; }

 private:
  std::string lower_;
  std::bitset<4096> grams_;
};

class Prefilter {
 public:
  Prefilter() = default;  // no filter: every text may match
  // The literals of a pattern that compiled as perl | icase. Never fails: syntax it does not
  // follow gives no filter.
  static Prefilter of(std::string_view pattern);

  bool filters() const { return !literals_.empty(); }
  // False only when the pattern cannot match the text.
  bool may_match(const FilterText& text) const;
  std::vector<std::string> literals() const;

 private:
  struct Literal {
    std::string text;               // lowered
    std::array<uint16_t, 4> grams;  // of up to 4 of its 3-byte sequences, spread over it
    uint8_t n_grams = 0;
  };
  std::vector<Literal> literals_;  // empty: no filter
};

}  // namespace sluice::classify
