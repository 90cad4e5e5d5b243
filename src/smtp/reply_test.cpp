#include "smtp/reply.h"

#include <gtest/gtest.h>

#include "smtp/reply_parser.h"

namespace sluice::smtp {
namespace {

Reply must_parse(std::string_view text) {
  auto r = parse_reply(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().detail);
  return r.ok() ? *r : Reply{};
}

ReplyError::Kind fails(std::string_view text) {
  auto r = parse_reply(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? ReplyError::Kind::kBadCode : r.error().kind;
}

TEST(ReplyParser, MultilineExampleOfRfc5321) {
  // RFC 5321 section 4.2.1.
  const Reply r = must_parse(
      "250-First line\r\n250-Second line\r\n250-234 Text beginning with numbers\r\n"
      "250 The last line\r\n");
  EXPECT_EQ(r.code, 250);
  EXPECT_FALSE(r.enhanced);
  ASSERT_EQ(r.lines.size(), 4u);
  EXPECT_EQ(r.lines[2], "234 Text beginning with numbers");
  EXPECT_EQ(r.text(), "First line Second line 234 Text beginning with numbers The last line");
}

TEST(ReplyParser, EhloResponse) {
  const Reply r = must_parse(
      "250-mx.example.com Hello\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
      "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n");
  EXPECT_EQ(r.lines.size(), 6u);
  EXPECT_EQ(r.lines[1], "SIZE 35882577");
  EXPECT_TRUE(r.positive());
}

TEST(ReplyParser, SplitsEnhancedStatusCodes) {
  // RFC 2034 section 4 examples, and a Gmail-style multi-line deferral.
  const Reply r = must_parse("550 5.1.1 Mailbox \"nosuchuser\" does not exist\r\n");
  ASSERT_TRUE(r.enhanced);
  EXPECT_EQ(r.enhanced->str(), "5.1.1");
  EXPECT_EQ(r.text(), "Mailbox \"nosuchuser\" does not exist");
  EXPECT_TRUE(r.permanent());

  const Reply g = must_parse(
      "421-4.7.0 Try again later, closing connection. (EHLO)\r\n"
      "421-4.7.0 For more information, go to\r\n"
      "421 4.7.0  https://support.google.com/a/answer/3221692 - gsmtp\r\n");
  EXPECT_EQ(g.code, 421);
  EXPECT_EQ(g.enhanced->str(), "4.7.0");
  EXPECT_EQ(g.lines[1], "For more information, go to");
  EXPECT_TRUE(g.transient());

  // A class that does not match the reply code is text, not an enhanced code.
  const Reply m = must_parse("250 5.1.1 looks like a code\r\n");
  EXPECT_FALSE(m.enhanced);
  EXPECT_EQ(m.text(), "5.1.1 looks like a code");
  EXPECT_EQ(must_parse("451 4.7.1\r\n").enhanced->str(), "4.7.1");
  EXPECT_FALSE(must_parse("451 4.7 x\r\n").enhanced);
  EXPECT_FALSE(must_parse("451 4.1000.1 x\r\n").enhanced);
}

TEST(ReplyParser, CodeWithoutTextIsLegal) {
  const Reply r = must_parse("250\r\n");
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.text(), "");
  EXPECT_EQ(must_parse("250-\r\n250 ok\r\n").lines.size(), 2u);
}

TEST(ReplyParser, MalformedRepliesAreErrors) {
  EXPECT_EQ(fails("25\r\n"), ReplyError::Kind::kBadCode);
  EXPECT_EQ(fails("abc ok\r\n"), ReplyError::Kind::kBadCode);
  EXPECT_EQ(fails("650 no such class\r\n"), ReplyError::Kind::kBadCode);
  EXPECT_EQ(fails("160 no such class\r\n"), ReplyError::Kind::kBadCode);
  EXPECT_EQ(fails("2x0 bad\r\n"), ReplyError::Kind::kBadCode);
  EXPECT_EQ(fails("\r\n"), ReplyError::Kind::kBadCode);
  EXPECT_EQ(fails("250-first\r\n251 second\r\n"), ReplyError::Kind::kCodeMismatch);
  EXPECT_EQ(fails("250_underscore\r\n"), ReplyError::Kind::kBadSeparator);
  EXPECT_EQ(fails("250 ok\n"), ReplyError::Kind::kBareLineEnd);
  EXPECT_EQ(fails("250 o\rk\r\n"), ReplyError::Kind::kBareLineEnd);
  EXPECT_EQ(fails("250 ok"), ReplyError::Kind::kBareLineEnd);  // incomplete
  EXPECT_EQ(fails("250 " + std::string(5000, 'x') + "\r\n"), ReplyError::Kind::kLineTooLong);
  std::string many;
  for (int i = 0; i < 300; ++i) many += "250-x\r\n";
  EXPECT_EQ(fails(many + "250 x\r\n"), ReplyError::Kind::kTooManyLines);
}

TEST(ReplyParser, ErrorIsSticky) {
  ReplyParser p;
  std::string_view in = "2x0 bad\r\n250 ok\r\n";
  auto r = p.next(in);
  ASSERT_TRUE(r && !r->ok());
  std::string_view more = "250 ok\r\n";
  auto again = p.next(more);
  ASSERT_TRUE(again && !again->ok());
}

TEST(ReplyParser, PipelinedRepliesComeOneAtATime) {
  ReplyParser p;
  std::string_view in = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
  std::vector<uint16_t> codes;
  while (auto r = p.next(in)) {
    ASSERT_TRUE(r->ok());
    codes.push_back((*r)->code);
  }
  EXPECT_EQ(codes, (std::vector<uint16_t>{250, 250, 354}));
  EXPECT_TRUE(in.empty());
}

TEST(ReplyParser, BytesMayArriveOneAtATime) {
  const std::string text = "250-mx Hello\r\n250-SIZE 1000\r\n250 PIPELINING\r\n220 next\r\n";
  ReplyParser p;
  std::vector<Reply> got;
  for (char c : text) {
    std::string_view one(&c, 1);
    if (auto r = p.next(one)) {
      ASSERT_TRUE(r->ok());
      got.push_back(**r);
    }
    EXPECT_TRUE(one.empty());
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].lines.size(), 3u);
  EXPECT_EQ(got[1].code, 220);
  EXPECT_FALSE(p.mid_reply());
}

TEST(ReplyBuilder, WireFormat) {
  EXPECT_EQ(Reply::make(250, "2.0.0", "Ok").wire(), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(Reply::make(250, "", "mx.example\nPIPELINING\nSIZE 1000").wire(),
            "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
  EXPECT_EQ(Reply::make(451, "4.7.1", "a\nb").wire(), "451-4.7.1 a\r\n451 4.7.1 b\r\n");
  EXPECT_EQ(Reply::make(250, "2.0.0", "").wire(), "250 2.0.0\r\n");
  EXPECT_EQ(Reply::make(220, "", "").wire(), "220 \r\n");
  EXPECT_EQ(Reply::make(550, "5.7.1", "no\r\x01relay").wire(), "550 5.7.1 no  relay\r\n");
  EXPECT_EQ(Reply::make(451, "4.7.1", "rate").summary(), "451 4.7.1 rate");
}

TEST(ReplyBuilder, LongTextIsSplitIntoLegalLines) {
  const Reply r = Reply::make(554, "5.7.1", std::string(2000, 'x'));
  EXPECT_GT(r.lines.size(), 1u);
  const std::string wire = r.wire();
  size_t start = 0;
  while (start < wire.size()) {
    const size_t end = wire.find("\r\n", start);
    EXPECT_LE(end + 2 - start, 512u);
    start = end + 2;
  }
}

TEST(ReplyBuilder, RoundTripsThroughTheParser) {
  for (const Reply& r : {Reply::make(250, "2.1.5", "Recipient ok"),
                         Reply::make(421, "4.7.0", "Too many concurrent connections\nTry later"),
                         Reply::make(250, "", "mx\n8BITMIME\nSMTPUTF8"),
                         Reply::make(354, "", "End data with <CR><LF>.<CR><LF>")}) {
    EXPECT_EQ(must_parse(r.wire()), r) << r.wire();
  }
}

TEST(EnhancedCode, Parse) {
  EXPECT_EQ(EnhancedCode::parse("4.7.0"), (EnhancedCode{4, 7, 0}));
  EXPECT_EQ(EnhancedCode::parse("5.999.999"), (EnhancedCode{5, 999, 999}));
  EXPECT_FALSE(EnhancedCode::parse("3.1.1"));
  EXPECT_FALSE(EnhancedCode::parse("4.1"));
  EXPECT_FALSE(EnhancedCode::parse("4..1"));
  EXPECT_FALSE(EnhancedCode::parse("4.1.1000"));
  EXPECT_FALSE(EnhancedCode::parse("44.1.1"));
  EXPECT_FALSE(EnhancedCode::parse(""));
}


TEST(Reply, BoundedKeepsWholeLinesThenCutsOne) {
  const Reply r{421, EnhancedCode{4, 7, 0}, {"first line", std::string(100, 'x'), "third"}};
  EXPECT_EQ(r.bounded(1000), r);
  const Reply b = r.bounded(30);
  EXPECT_EQ(b.code, 421);
  EXPECT_EQ(b.enhanced, r.enhanced);
  ASSERT_EQ(b.lines.size(), 2u);
  EXPECT_EQ(b.lines[0], "first line");
  EXPECT_EQ(b.lines[1], std::string(16, 'x') + "...");
  EXPECT_LE(b.text().size(), 30u);
}

TEST(Reply, BoundedBoundsAHugeReply) {
  Reply r{550, std::nullopt, std::vector<std::string>(256, std::string(4096, 'y'))};
  EXPECT_LE(r.bounded(2048).text().size(), 2048u);
}

}  // namespace
}  // namespace sluice::smtp
