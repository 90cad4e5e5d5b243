#include "smtp/command.h"

#include <gtest/gtest.h>

namespace sluice::smtp {
namespace {

template <class T>
T must_parse(std::string_view line, ParseContext ctx = {}) {
  auto r = parse_command(line, ctx);
  EXPECT_TRUE(r.ok()) << line << " -> " << (r.ok() ? "" : r.error().reply.summary());
  if (!r.ok() || !std::holds_alternative<T>(*r)) {
    ADD_FAILURE() << line << ": parsed as another command";
    return T{};
  }
  return std::get<T>(*r);
}

// The reply's "code enhanced" for a line that must fail.
std::string fails_with(std::string_view line, ParseContext ctx = {}) {
  auto r = parse_command(line, ctx);
  if (r.ok()) return "accepted";
  const Reply& rep = r.error().reply;
  return std::to_string(rep.code) + " " + (rep.enhanced ? rep.enhanced->str() : "-");
}

TEST(Command, VerbsAreCaseInsensitive) {
  EXPECT_EQ(must_parse<Ehlo>("EHLO client.example").domain, "client.example");
  EXPECT_EQ(must_parse<Ehlo>("ehlo client.example").domain, "client.example");
  EXPECT_EQ(must_parse<Helo>("HeLo client.example").domain, "client.example");
  must_parse<Data>("data");
  must_parse<Quit>("QUIT");
  must_parse<Rset>("rset");
  must_parse<StartTls>("StartTLS");
}

TEST(Command, HelloTakesDomainOrAddressLiteral) {
  EXPECT_EQ(must_parse<Ehlo>("EHLO [192.0.2.1]").domain, "[192.0.2.1]");
  EXPECT_EQ(must_parse<Ehlo>("EHLO [IPv6:::1]").domain, "[IPv6:::1]");
  EXPECT_EQ(fails_with("EHLO"), "501 5.5.4");
  EXPECT_EQ(fails_with("HELO "), "501 5.5.4");
  EXPECT_EQ(fails_with("EHLO bad..name"), "501 5.5.4");
  EXPECT_EQ(fails_with("EHLO two words"), "501 5.5.4");
}

TEST(Command, MailFromWithRfc5321Examples) {
  // RFC 5321 appendix D.1.
  auto m = must_parse<MailFrom>("MAIL FROM:<Smith@bar.com>");
  ASSERT_TRUE(m.sender);
  EXPECT_EQ(m.sender->str(), "Smith@bar.com");
  auto null = must_parse<MailFrom>("MAIL FROM:<>");
  EXPECT_FALSE(null.sender);
  // A space after the colon is a common deviation that servers accept.
  EXPECT_EQ(must_parse<MailFrom>("mail from: <a@b.example>").sender->str(), "a@b.example");
  EXPECT_EQ(fails_with("MAIL FROM:a@b.example"), "501 5.1.7");
  EXPECT_EQ(fails_with("MAIL TO:<a@b.example>"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example>x"), "501 5.5.4");
}

TEST(Command, MailParameters) {
  auto m = must_parse<MailFrom>(
      "MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME RET=HDRS ENVID=QQ314159+2B1 AUTH=<>");
  EXPECT_EQ(m.params.size, 12345u);
  EXPECT_EQ(m.params.body, Body::k8BitMime);
  EXPECT_EQ(m.params.ret, Ret::kHeaders);
  EXPECT_EQ(m.params.envid, "QQ314159+1");
  EXPECT_EQ(m.params.auth, "<>");
  EXPECT_FALSE(m.params.smtputf8);
  EXPECT_EQ(must_parse<MailFrom>("MAIL FROM:<a@b.example> body=7bit").params.body, Body::k7Bit);
  EXPECT_EQ(must_parse<MailFrom>("MAIL FROM:<a@b.example> BODY=BINARYMIME").params.body,
            Body::kBinaryMime);
  EXPECT_EQ(must_parse<MailFrom>("MAIL FROM:<a@b.example> RET=FULL").params.ret, Ret::kFull);
  EXPECT_TRUE(must_parse<MailFrom>("MAIL FROM:<a@b.example> SMTPUTF8").params.smtputf8);
  // Trailing and repeated spaces are tolerated.
  EXPECT_EQ(must_parse<MailFrom>("MAIL FROM:<a@b.example>  SIZE=1  ").params.size, 1u);
}

TEST(Command, MailParameterErrors) {
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> FOO=bar"), "555 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> XYZ"), "555 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> SIZE=abc"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> SIZE"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> SIZE=1 SIZE=2"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> SIZE=99999999999999999999999"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> BODY=9BIT"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> SMTPUTF8=yes"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> RET=ALL"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> ENVID=a=b"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> ENVID=" + std::string(101, 'x')), "501 5.5.4");
  // Decoded, ENVID goes into DSN fields: CR LF (or any control octet) there would write fields.
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> ENVID=x+0D+0ABcc:evil@x.example"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> ENVID=x+00y"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> ENVID=x+C3+A9"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> =x"), "501 5.5.4");
  EXPECT_EQ(fails_with("MAIL FROM:<a@b.example> -A=x"), "501 5.5.4");
}

TEST(Command, RcptToWithRfc5321Examples) {
  EXPECT_EQ(must_parse<RcptTo>("RCPT TO:<Jones@foo.com>").recipient.str(), "Jones@foo.com");
  EXPECT_EQ(must_parse<RcptTo>("RCPT TO:<Postmaster>").recipient.str(), "Postmaster");
  EXPECT_EQ(must_parse<RcptTo>("RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>").recipient.str(),
            "userc@d.bar.org");
  EXPECT_EQ(fails_with("RCPT TO:<>"), "501 5.1.3");
  EXPECT_EQ(fails_with("RCPT FROM:<a@b.example>"), "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> SIZE=10"), "555 5.5.4");
}

TEST(Command, DsnParametersOfRfc3461) {
  auto r = must_parse<RcptTo>(
      "RCPT TO:<Dana@Ivory.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Dana@Ivory.example");
  EXPECT_TRUE(r.params.notify.specified);
  EXPECT_TRUE(r.params.notify.success);
  EXPECT_TRUE(r.params.notify.failure);
  EXPECT_FALSE(r.params.notify.delay);
  EXPECT_FALSE(r.params.notify.never);
  ASSERT_TRUE(r.params.orcpt);
  EXPECT_EQ(r.params.orcpt->addr_type, "rfc822");
  EXPECT_EQ(r.params.orcpt->address, "Dana@Ivory.example");
  EXPECT_TRUE(must_parse<RcptTo>("RCPT TO:<a@b.example> NOTIFY=NEVER").params.notify.never);
  EXPECT_TRUE(must_parse<RcptTo>("RCPT TO:<a@b.example> NOTIFY=delay").params.notify.delay);
  EXPECT_EQ(must_parse<RcptTo>("RCPT TO:<a@b.example> ORCPT=rfc822;a+2Bb@c.example")
                .params.orcpt->address,
            "a+b@c.example");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> NOTIFY=NEVER,SUCCESS"), "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> NOTIFY=SUCCESS,NEVER"), "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> NOTIFY=SOMETIMES"), "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> NOTIFY=SUCCESS,"), "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> ORCPT=a@b.example"), "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> ORCPT=rfc822;"), "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> ORCPT=rfc822;a@b.example+0D+0AX-Evil:1"),
            "501 5.5.4");
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> NOTIFY=DELAY NOTIFY=DELAY"), "501 5.5.4");
}

TEST(Command, Smtputf8GovernsInternationalizedAddresses) {
  // RFC 6531 section 3.4: a UTF-8 address needs SMTPUTF8 on MAIL; the reply is 553 5.6.7.
  EXPECT_EQ(fails_with("MAIL FROM:<j\xc3\xb6rg@example.com>"), "553 5.6.7");
  EXPECT_TRUE(must_parse<MailFrom>("MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8").sender->utf8);
  EXPECT_EQ(fails_with("RCPT TO:<\xe7\x94\xa8@\xe4\xbe\x8b.example>"), "553 5.6.7");
  ParseContext utf8;
  utf8.smtputf8_transaction = true;
  EXPECT_TRUE(
      must_parse<RcptTo>("RCPT TO:<\xe7\x94\xa8@\xe4\xbe\x8b.example>", utf8).recipient.utf8);
  auto orcpt = must_parse<RcptTo>("RCPT TO:<a@b.example> ORCPT=utf-8;\xe7\x94\xa8@b.example", utf8);
  EXPECT_EQ(orcpt.params.orcpt->address, "\xe7\x94\xa8@b.example");
}

TEST(Command, AddressLimitsGiveRfcReplies) {
  EXPECT_EQ(fails_with("RCPT TO:<" + std::string(65, 'a') + "@b.example>"), "501 5.1.3");
  EXPECT_EQ(fails_with("MAIL FROM:<" + std::string(65, 'a') + "@b.example>"), "501 5.1.7");
  std::string domain;
  for (int i = 0; i < 5; ++i) domain += (i ? "." : "") + std::string(60, 'd');
  EXPECT_EQ(fails_with("RCPT TO:<a@" + domain + ">"), "501 5.1.3");
  auto r = parse_command("RCPT TO:<" + std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
                         std::string(63, 'c') + "." + std::string(63, 'd') + "." +
                         std::string(60, 'e') + ">");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reply.text(), "Path too long");
}

TEST(Command, LineLengthLimits) {
  // 510 octets + CRLF = 512: the longest plain command line.
  const std::string noop_ok = "NOOP " + std::string(505, 'x');
  ASSERT_EQ(noop_ok.size(), 510u);
  must_parse<Noop>(noop_ok);
  EXPECT_EQ(fails_with(noop_ok + "x"), "500 5.5.2");
  // MAIL and RCPT get the extra room their extensions define (RFC 1870, 3461, 4954).
  const std::string orcpt = "RCPT TO:<a@b.example> ORCPT=rfc822;" + std::string(480, 'o');
  ASSERT_GT(orcpt.size(), 510u);
  must_parse<RcptTo>(orcpt);
  EXPECT_EQ(fails_with("RCPT TO:<a@b.example> ORCPT=rfc822;" + std::string(1000, 'o')),
            "500 5.5.2");
}

TEST(Command, TextCommands) {
  EXPECT_EQ(must_parse<Vrfy>("VRFY Smith").argument, "Smith");
  EXPECT_EQ(must_parse<Expn>("EXPN Example-People").argument, "Example-People");
  EXPECT_EQ(must_parse<Help>("HELP").topic, "");
  EXPECT_EQ(must_parse<Help>("HELP MAIL").topic, "MAIL");
  must_parse<Noop>("NOOP");
  must_parse<Noop>("NOOP anything at all");
  EXPECT_EQ(fails_with("VRFY"), "501 5.5.4");
  EXPECT_EQ(fails_with("EXPN "), "501 5.5.4");
  EXPECT_EQ(fails_with("VRFY a\x01"
                       "b"),
            "501 5.5.4");
}

TEST(Command, CommandsWithoutArguments) {
  EXPECT_EQ(fails_with("DATA now"), "501 5.5.4");
  EXPECT_EQ(fails_with("QUIT please"), "501 5.5.4");
  EXPECT_EQ(fails_with("RSET x"), "501 5.5.4");
  EXPECT_EQ(fails_with("STARTTLS x"), "501 5.5.4");
  must_parse<Quit>("QUIT ");
}

TEST(Command, Bdat) {
  auto b = must_parse<Bdat>("BDAT 1000");
  EXPECT_EQ(b.size, 1000u);
  EXPECT_FALSE(b.last);
  auto last = must_parse<Bdat>("BDAT 0 LAST");
  EXPECT_EQ(last.size, 0u);
  EXPECT_TRUE(last.last);
  EXPECT_TRUE(must_parse<Bdat>("bdat 5 last").last);
  EXPECT_EQ(fails_with("BDAT"), "501 5.5.4");
  EXPECT_EQ(fails_with("BDAT -1"), "501 5.5.4");
  EXPECT_EQ(fails_with("BDAT 10 FIRST"), "501 5.5.4");
  EXPECT_EQ(fails_with("BDAT 123456789012345678901"), "501 5.5.4");
}

TEST(Command, Auth) {
  auto a = must_parse<Auth>("AUTH plain AGFsaWNlAHNlY3JldA==");
  EXPECT_EQ(a.mechanism, "PLAIN");
  EXPECT_EQ(a.initial_response, "AGFsaWNlAHNlY3JldA==");
  auto login = must_parse<Auth>("AUTH LOGIN");
  EXPECT_FALSE(login.initial_response);
  EXPECT_EQ(must_parse<Auth>("AUTH PLAIN =").initial_response, "=");
  EXPECT_EQ(fails_with("AUTH"), "501 5.5.4");
  EXPECT_EQ(fails_with("AUTH PL@IN"), "501 5.5.4");
  EXPECT_EQ(fails_with("AUTH PLAIN not*base64"), "501 5.5.2");
}

TEST(Command, UnknownAndUnimplemented) {
  EXPECT_EQ(fails_with("FOO"), "500 5.5.1");
  EXPECT_EQ(fails_with(""), "500 5.5.1");
  EXPECT_EQ(fails_with(" MAIL FROM:<a@b>"), "500 5.5.1");
  EXPECT_EQ(fails_with("MAILFROM:<a@b.example>"), "500 5.5.1");
  EXPECT_EQ(fails_with("TURN"), "502 5.5.1");
  EXPECT_EQ(fails_with("SEND FROM:<a@b.example>"), "502 5.5.1");
  EXPECT_EQ(fails_with(std::string("NOOP\0x", 6)), "500 5.5.2");
}

TEST(Command, VerbNames) {
  EXPECT_EQ(verb_name(Command{MailFrom{}}), "MAIL");
  EXPECT_EQ(verb_name(Command{StartTls{}}), "STARTTLS");
  EXPECT_EQ(verb_name(Command{Auth{}}), "AUTH");
}

}  // namespace
}  // namespace sluice::smtp
