#include "classify/model.h"

#include <gtest/gtest.h>

namespace sluice::classify {
namespace {

TEST(WordModel, FeaturesAreTheTrainingScriptsOnes) {
  const auto f = WordModel::features("451 4.7.1 Try LATER, 3 times (x) Grüße", "rcpt");
  const std::vector<std::string> want = {
      "w:try",       "w:later",    "w:times", "w:gr\xc3\xbc\xc3\x9f" "e",
      "b:try_later", "b:later_times", "b:times_gr\xc3\xbc\xc3\x9f" "e",
      "c:451",       "c1:4",       "e:4.7.1", "es:4.7", "s:rcpt"};
  EXPECT_EQ(f, want);
  // A number in an address or a version is no code; nothing found, nothing added.
  EXPECT_EQ(WordModel::features("from 192.0.2.245 v1.550", ""),
            (std::vector<std::string>{"w:from", "s:unknown"}));
}

TEST(WordModel, PredictsTheHeaviestCategoryAndParseErrorsNameTheLine) {
  auto m = WordModel::parse("# a comment\nw:quota\tmailbox-full\t2.5\nw:quota\tother\t0.5\n"
                            "c1:4\tgreylist\t1\n",
                            "m.tsv");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->predict("552 quota", "rcpt"), Category::kMailboxFull);
  EXPECT_EQ(m->predict("451 hello", "rcpt"), Category::kGreylist);
  EXPECT_EQ(m->predict("nothing known", "rcpt"), Category::kAuthentication);  // all 0: first
  auto bad = WordModel::parse("w:x\tnot-a-category\t1\n", "m.tsv");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "m.tsv:1: unknown category");
}

TEST(WordModel, TheBuiltInClassifierGuessesOnlyWhereNoWordsDecided) {
  const Classifier& c = Classifier::builtin();
  const auto known = smtp::Reply::make(550, "5.1.1", "User unknown");
  Input in;
  in.stage = Stage::kRcpt;
  in.reply = &known;
  EXPECT_EQ(c.classify(in).rule, "user-unknown");
  const auto unknown = smtp::Reply::make(421, "4.7.0", "Blorpt frazzle quux wibble");
  in.stage = Stage::kBanner;
  in.reply = &unknown;
  const Verdict v = c.classify(in);
  EXPECT_EQ(v.rule, "model");
  EXPECT_FALSE(v.by_words);
  EXPECT_NE(v.action, Action::kSuspend);
}

}  // namespace
}  // namespace sluice::classify
