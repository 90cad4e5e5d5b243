#include "classify/prefilter.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <boost/regex.hpp>
#include <filesystem>
#include <fstream>

#include "classify/classifier.h"

namespace sluice::classify {
namespace {

std::vector<std::string> literals(std::string_view pattern) {
  return Prefilter::of(pattern).literals();
}

TEST(Prefilter, NeedsOneLiteralOfEveryBranch) {
  EXPECT_EQ(literals("too many connections"), std::vector<std::string>{"too many connections"});
  // Optional parts multiply out while the set stays small; letters are lowered.
  EXPECT_EQ(literals("E-?mails? quota"), (std::vector<std::string>{"e-mail quota", "e-mails quota",
                                                                   "email quota", "emails quota"}));
  // A class or a repeat claims nothing; the most selective run of literals is kept.
  EXPECT_EQ(literals(R"(ab\d+ rate limit)"), std::vector<std::string>{" rate limit"});
  EXPECT_EQ(literals(R"((?:foo|\w+)bar)"), std::vector<std::string>{"bar"});
  // Assertions consume nothing.
  EXPECT_EQ(literals(R"((?<!not )\blisted (?:in|on)\b)"),
            (std::vector<std::string>{"listed in", "listed on"}));
  // Escapes: punctuation, control characters and hexadecimal bytes are literals.
  EXPECT_EQ(literals(R"(a\.b\tc\x41)"), std::vector<std::string>{"a.b\tca"});
  // A literal found inside another makes the longer one needless.
  EXPECT_EQ(literals("spam|spammer|junk"), (std::vector<std::string>{"junk", "spam"}));
  // A branch that needs nothing leaves the pattern without a filter.
  EXPECT_FALSE(Prefilter::of(R"(greylist|\d{3})").filters());
  EXPECT_FALSE(Prefilter::of(R"(x?)").filters());
  // Syntax the extractor does not follow: no filter, never a wrong one.
  EXPECT_FALSE(Prefilter::of("(?i)foo").filters());
  EXPECT_FALSE(Prefilter::of(R"((?<name>foo))").filters());
  EXPECT_FALSE(Prefilter::of(R"(\Qfoo\E)").filters());
  EXPECT_FALSE(Prefilter::of(R"((foo)\1)").filters());
}

TEST(Prefilter, ReadsTextsCaseInsensitively) {
  const auto f = Prefilter::of("too many (?:connections|sessions)");
  EXPECT_TRUE(f.may_match(FilterText("421 4.7.0 TOO MANY Sessions from 192.0.2.1")));
  EXPECT_FALSE(f.may_match(FilterText("421 4.7.0 too many messages")));
  EXPECT_TRUE(Prefilter().may_match(FilterText("anything")));
  // Short literals are looked for too.
  EXPECT_TRUE(Prefilter::of(R"(\bgl\d)").may_match(FilterText("[GL01]")));
}

// Every pattern of the shipped rule files (each `text = '…'` line: TOML literal strings, no
// escapes), compiled as the classifier compiles them.
std::vector<std::pair<std::string, boost::regex>> shipped_patterns() {
  std::vector<std::pair<std::string, boost::regex>> out;
  for (const char* file : {"/etc/classify.toml", "/etc/phrases.toml"}) {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("text = '", 0) != 0 || line.back() != '\'') continue;
      std::string pattern = line.substr(8, line.size() - 9);
      out.emplace_back(pattern, boost::regex(pattern, boost::regex::perl | boost::regex::icase |
                                                          boost::regex::optimize));
    }
  }
  return out;
}

// Every reply of the corpus, as the classifier reads it.
std::vector<std::string> corpus_texts() {
  std::vector<std::string> out;
  const std::filesystem::path root = std::filesystem::path(SLUICE_SOURCE_DIR) / "tests/corpus";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".jsonl" || entry.path().filename() == "agreement.jsonl")
      continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto reply = boost::json::parse(line).as_object().at("reply").as_string();
      auto parsed = parse_pasted_reply(std::string_view(reply.data(), reply.size()));
      if (parsed.ok()) out.push_back(parsed->reply.text());
    }
  }
  return out;
}

// The filter never skips a search that would have matched: over every shipped pattern and
// every corpus reply. And it does skip: most searches of a reply cannot match.
TEST(Prefilter, NeverSkipsAMatchOfTheShippedPatternsOnTheCorpus) {
  const auto patterns = shipped_patterns();
  const auto texts = corpus_texts();
  ASSERT_GT(patterns.size(), 250u);
  ASSERT_GT(texts.size(), 5000u);
  std::vector<Prefilter> filters;
  size_t filtering = 0;
  for (const auto& [pattern, re] : patterns) {
    filters.push_back(Prefilter::of(pattern));
    filtering += filters.back().filters();
  }
  EXPECT_GT(filtering * 10, patterns.size() * 9) << "most patterns have a filter";
  size_t searches = 0;
  size_t skipped = 0;
  size_t wrong = 0;
  for (const auto& text : texts) {
    const FilterText ft(text);
    for (size_t i = 0; i < patterns.size(); ++i) {
      ++searches;
      if (filters[i].may_match(ft)) continue;
      ++skipped;
      if (boost::regex_search(text, patterns[i].second)) {
        if (++wrong <= 5)
          ADD_FAILURE() << "skipped a match of '" << patterns[i].first << "' in: " << text;
      }
    }
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_GT(skipped * 10, searches * 8) << skipped << " of " << searches << " searches skipped";
}

}  // namespace
}  // namespace sluice::classify
