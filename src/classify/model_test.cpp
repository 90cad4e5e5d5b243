#include "classify/model.h"

#include <gtest/gtest.h>

#include <memory>

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
  EXPECT_EQ(m->predict("552 quota", "rcpt").category, Category::kMailboxFull);
  EXPECT_EQ(m->predict("451 hello", "rcpt").category, Category::kGreylist);
  // All scores 0: the first category.
  EXPECT_EQ(m->predict("nothing known", "rcpt").category, Category::kAuthentication);
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

TEST(WordModel, OverrulesOnlyContestedWordsAndNeverAThrottleSignal) {
  auto c = Classifier::parse(R"(
[[phrase]]
name = "weak-policy"
weight = 6
text = 'widget|gadget'
category = "policy"
[[phrase]]
name = "exact-auth"
weight = 10
text = 'dkim'
category = "authentication"
[[phrase]]
name = "per-hour"
weight = 6
text = 'per hour'
category = "rate-limit"
)",
                             "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto m = WordModel::parse(
      "w:widget\treputation\t5\nw:dkim\treputation\t5\n"
      "w:hour\treputation\t5\nw:gadget\treputation\t0.3\n",
      "m.tsv");
  ASSERT_TRUE(m.ok()) << m.error().message;
  c->set_model(std::make_shared<const WordModel>(std::move(*m)));
  auto read = [&](const char* text, Evidence* why = nullptr) {
    const auto reply = smtp::Reply::make(550, "", text);
    Input in;
    in.reply = &reply;
    return c->classify(in, why);
  };
  // One content word's weight: the model, sure of another category, decides (never by words).
  Evidence why;
  const Verdict weak = read("widget", &why);
  EXPECT_EQ(weak.category, Category::kReputation);
  EXPECT_EQ(weak.rule, "model");
  EXPECT_FALSE(weak.by_words);
  EXPECT_EQ(why.weight[static_cast<size_t>(Category::kPolicy)], 6);
  EXPECT_EQ(why.phrase, "weak-policy");
  ASSERT_TRUE(why.model.has_value());
  EXPECT_EQ(why.model->category, Category::kReputation);
  EXPECT_GT(why.model->probability, 0.9);
  // Not sure enough: the words stand, and the guess is still shown.
  EXPECT_EQ(read("gadget", &why).rule, "weak-policy");
  EXPECT_LT(why.model->probability, 0.7);
  // An exact phrase leads by more than a content word: not contested.
  EXPECT_EQ(read("dkim").rule, "exact-auth");
  // A limit named in words is never overruled.
  EXPECT_EQ(read("10 messages per hour").category, Category::kRateLimit);
}

}  // namespace
}  // namespace sluice::classify
