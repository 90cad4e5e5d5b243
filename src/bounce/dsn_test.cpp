#include "bounce/dsn.h"

#include <gtest/gtest.h>

namespace sluice::bounce {
namespace {

spool::MessageMeta original() {
  spool::MessageMeta m;
  m.id = 0x66153c800c292000ULL;
  m.sender = "alice@example.com";
  m.envid = "QQ314159";
  m.received_ms = 1'795'000'000'000;
  return m;
}

DsnInput input(const spool::MessageMeta& m, std::string_view body) {
  DsnInput in;
  in.original = &m;
  in.original_body = body;
  in.reporting_mta = "mta.example.net";
  in.now_ms = 1'795'000'600'000;
  in.recipients.push_back({"bob@example.org", "rfc822", "bob@example.org", "failed", "5.1.1",
                           "mx.example.org", "550 5.1.1 no such user"});
  return in;
}

TEST(Dsn, FollowsRfc3464) {
  const auto m = original();
  const std::string body = "Subject: hi\r\nFrom: alice@example.com\r\n\r\nsecret body\r\n";
  const std::string dsn = build_dsn(input(m, body));
  EXPECT_NE(dsn.find("To: <alice@example.com>\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("From: Mail Delivery System <MAILER-DAEMON@mta.example.net>"),
            std::string::npos);
  EXPECT_NE(dsn.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Content-Type: multipart/report; report-type=delivery-status;"),
            std::string::npos);
  EXPECT_NE(
      dsn.find(
          "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mta.example.net\r\n"),
      std::string::npos);
  EXPECT_NE(dsn.find("Original-Envelope-Id: QQ314159\r\n"), std::string::npos);
  EXPECT_NE(
      dsn.find(
          "Original-Recipient: rfc822; bob@example.org\r\n"
          "Final-Recipient: rfc822; bob@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
          "Remote-MTA: dns; mx.example.org\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"),
      std::string::npos);
  EXPECT_NE(dsn.find("Content-Type: message/rfc822\r\n\r\nSubject: hi"), std::string::npos);
  EXPECT_NE(dsn.find("secret body"), std::string::npos);
  EXPECT_TRUE(dsn.ends_with("--\r\n"));
  // No bare LF anywhere: the DSN itself goes through sluice's own DATA rules.
  for (size_t i = 0; i < dsn.size(); ++i) {
    if (dsn[i] == '\n') {
      ASSERT_TRUE(i > 0 && dsn[i - 1] == '\r') << i;
    }
  }
}

TEST(Dsn, RetHdrsReturnsOnlyTheHeaders) {
  auto m = original();
  m.ret = spool::DsnRet::kHeaders;
  const std::string dsn = build_dsn(input(m, "Subject: hi\r\n\r\nsecret body\r\n"));
  EXPECT_NE(dsn.find("Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\n"),
            std::string::npos);
  EXPECT_EQ(dsn.find("secret body"), std::string::npos);
}

TEST(Dsn, NotifyDecidesWhetherFailuresAreReported) {
  EXPECT_TRUE(wants_failure_notice(0));
  EXPECT_TRUE(wants_failure_notice(spool::kNotifyFailure | spool::kNotifyDelay));
  EXPECT_FALSE(wants_failure_notice(spool::kNotifyNever));
  EXPECT_FALSE(wants_failure_notice(spool::kNotifySuccess));
}

// The text of the report part, up to the returned message: what a sender's MUA parses.
std::string_view report_part(const std::string& dsn) {
  return std::string_view(dsn).substr(0, dsn.find("Content-Type: message/rfc822"));
}

TEST(Dsn, ValuesFromOutsideCannotWriteFieldsAndLinesStayWithin998Octets) {
  auto m = original();
  m.envid = "env\r\nBcc: victim@example.net";
  auto in = input(m, "Subject: hi\r\n\r\nbody\r\n");
  in.recipients[0].orcpt = "bob@example.org\r\nX-Injected: yes";
  std::string words;
  for (int i = 0; i < 400; ++i) words += "refused ";
  in.recipients[0].diagnostic = "550 5.7.1 " + words + std::string(3000, 'z');
  const std::string dsn = build_dsn(in);
  const std::string_view report = report_part(dsn);
  EXPECT_EQ(report.find("\r\nBcc:"), std::string_view::npos);
  EXPECT_EQ(report.find("\r\nX-Injected:"), std::string_view::npos);
  EXPECT_NE(report.find("Original-Envelope-Id: env  Bcc: victim@example.net\r\n"),
            std::string_view::npos);
  size_t start = 0, longest = 0;
  for (size_t end; (end = dsn.find("\r\n", start)) != std::string::npos; start = end + 2)
    longest = std::max(longest, end - start);
  EXPECT_LE(longest, 998u);
  // The folded diagnostic is all there: unfolding gives the words back.
  const size_t d = report.find("Diagnostic-Code: smtp; 550 5.7.1 refused");
  ASSERT_NE(d, std::string_view::npos);
  const size_t next = report.find("Last-Attempt-Date:", d);
  std::string unfolded(report.substr(d, next - d));
  for (size_t p; (p = unfolded.find("\r\n ")) != std::string::npos;) unfolded.erase(p, 2);
  EXPECT_NE(unfolded.find(words + "zzz"), std::string::npos);
}

}  // namespace
}  // namespace sluice::bounce
