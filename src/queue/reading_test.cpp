#include "queue/reading.h"

#include <gtest/gtest.h>

namespace sluice::queue {
namespace {

using classify::Action;
using classify::Category;
using outbound::RecipientResult;
using outbound::Stage;

// A lane with a fresh controller, on made-up time: no clock, no I/O.
Lane make_lane() {
  Lane l;
  l.key = "127.0.0.2|mx.example.test";
  l.source = "ip1";
  l.address = "127.0.0.2";
  config::ShapingLimits limits;
  limits.connection_limit = 20;
  l.ctl = std::make_unique<shaping::Controller>(limits, config::ShapingTuning{}, 0);
  return l;
}

RecipientResult result(Stage stage, uint16_t code, std::string_view enhanced,
                       std::string_view text) {
  return RecipientResult{0, outbound::Outcome::kTransient, stage,
                         smtp::Reply::make(code, enhanced, text)};
}

const ReplyReader& reader() {
  static const ReplyReader r(&classify::Classifier::builtin());
  return r;
}

TEST(ReplyReader, KnownWordsDecideWhateverTheLaneDoes) {
  Lane l = make_lane();
  const auto r = reader().read(l, result(Stage::kBanner, 421, "4.7.0", "Too many connections"),
                               0, "", 1000);
  EXPECT_EQ(r.verdict.category, Category::kConnectionLimit);
  EXPECT_EQ(r.outage, Outage::kNone);
}

TEST(ReplyReader, UnknownRefusalWhileOthersWorkIsAConnectionLimit) {
  Lane l = make_lane();  // in slow start: 2 connections allowed
  l.established = 1;
  const auto r =
      reader().read(l, result(Stage::kBanner, 450, "", "blorp frobnicated, go away"), 0, "", 1000);
  EXPECT_EQ(r.verdict.category, Category::kConnectionLimit);
  EXPECT_EQ(r.verdict.action, Action::kReduceConnections);
  EXPECT_EQ(r.verdict.rule, "behaviour: refused while others work");
  // Applied to the lane: the limit becomes what was working.
  const auto change = ReplyReader::apply(l, r.verdict, result(Stage::kBanner, 450, "", "x"), 0,
                                         1000);
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(l.ctl->connection_limit(), 1u);
  EXPECT_EQ(l.refused_connections, 1u);
  EXPECT_EQ(l.last_category, "connection-limit");
}

TEST(ReplyReader, NothingWorkingIsAnOutageFoundOnceThenOngoing) {
  Lane l = make_lane();
  const auto closed = result(Stage::kBanner, 421, "4.4.2", "connection closed before the banner");
  const auto first = reader().read(l, closed, 0, "", 1000);
  EXPECT_EQ(first.outage, Outage::kBegins);
  ASSERT_TRUE(first.change.has_value());
  EXPECT_TRUE(l.ctl->unavailable());
  EXPECT_FALSE(l.ctl->may_open(1000, 0));  // one probe later, not one connection per message
  const auto second = reader().read(l, closed, 0, "", 1500);
  EXPECT_EQ(second.outage, Outage::kOngoing);
}

TEST(ReplyReader, RefusalsOfMessagesInNumbersAreARateLimit) {
  Lane l = make_lane();
  l.established = 2;
  const auto refused = result(Stage::kRcpt, 451, "", "please try later, zorp");
  for (int i = 0; i < 60; ++i) ReplyReader::delivered(l, 1000 + i * 10);
  Reading r;
  for (int i = 0; i < 5; ++i) r = reader().read(l, refused, 1, "", 1700 + i * 10);
  EXPECT_NE(r.verdict.category, Category::kRateLimit);  // 5 of 65: a few failures, no pattern
  for (int i = 0; i < 5; ++i) r = reader().read(l, refused, 1, "", 1800 + i * 10);
  EXPECT_EQ(r.verdict.category, Category::kRateLimit);  // 10 of 70: they track the rate
  EXPECT_EQ(r.verdict.rule, "behaviour: refusals track the message rate");
  // Applied: the lane is paced at about what it delivered (60 over 0.85 s -> a 1 s span).
  ASSERT_TRUE(ReplyReader::apply(l, r.verdict, refused, 1, 1850).has_value());
  EXPECT_GT(l.ctl->message_rate(), 0.0);
}

TEST(ReplyReader, DeliveriesOutsideTheWindowAreTrimmed) {
  Lane l = make_lane();
  ReplyReader::delivered(l, 1000);
  ReplyReader::delivered(l, 5000);
  ReplyReader::trim(l, 6000);
  EXPECT_EQ(l.recent.size(), 1u);
  EXPECT_EQ(l.delivered, 2u);
}

}  // namespace
}  // namespace sluice::queue
