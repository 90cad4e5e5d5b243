#include "classify/model.h"

#include <gtest/gtest.h>

#include <cmath>
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

TEST(WordModel, NeverOverrulesWordsAndEvidenceSaysWhatWeighed) {
  auto c = Classifier::parse(R"(
[[phrase]]
name = "weak-policy"
weight = 6
text = 'widget'
category = "policy"
[[phrase]]
name = "exact-auth"
weight = 10
text = 'dkim'
category = "authentication"
)",
                             "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto m = WordModel::parse("w:widget\treputation\t5\nw:blorpt\tgreylist\t1\n", "m.tsv");
  ASSERT_TRUE(m.ok()) << m.error().message;
  c->set_model(std::make_shared<const WordModel>(std::move(*m)));
  auto read = [&](const char* text, Evidence* why) {
    const auto reply = smtp::Reply::make(550, "", text);
    Input in;
    in.reply = &reply;
    return c->classify(in, why);
  };
  // Words decide, however sure the model would be; the model is not even asked.
  Evidence why;
  const Verdict words = read("widget and dkim", &why);
  EXPECT_EQ(words.rule, "exact-auth");
  EXPECT_TRUE(words.by_words);
  EXPECT_EQ(why.weight[static_cast<size_t>(Category::kAuthentication)], 10);
  EXPECT_EQ(why.weight[static_cast<size_t>(Category::kPolicy)], 6);
  EXPECT_EQ(why.weight[static_cast<size_t>(Category::kReputation)], 0);
  EXPECT_EQ(why.phrase, "exact-auth");
  EXPECT_FALSE(why.model.has_value());
  EXPECT_EQ(read("widget", &why).rule, "weak-policy");
  // No words: the model's guess decides, and says how sure it is (softmax of 1 against 11 zeros).
  Evidence guess;
  const Verdict v = read("blorpt", &guess);
  EXPECT_EQ(v.rule, "model");
  EXPECT_EQ(v.category, Category::kGreylist);
  EXPECT_TRUE(guess.phrase.empty());
  ASSERT_TRUE(guess.model.has_value());
  EXPECT_EQ(guess.model->category, Category::kGreylist);
  EXPECT_NEAR(guess.model->probability, std::exp(1.0) / (std::exp(1.0) + 11), 1e-9);
}

}  // namespace
}  // namespace sluice::classify
