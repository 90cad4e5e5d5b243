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

}  // namespace
}  // namespace sluice::bounce
