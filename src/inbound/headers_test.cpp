#include "inbound/headers.h"

#include <gtest/gtest.h>

namespace sluice::inbound {
namespace {

TEST(Headers, FindsFieldsInTheHeaderSectionOnly) {
  const std::string m =
      "From: a@b\r\nmessage-id :  <x@y>  \r\nSubject: s\r\n\r\nMessage-ID: <body@z>\r\n";
  EXPECT_EQ(header_value(m, "Message-ID"), "<x@y>");
  EXPECT_EQ(header_value(m, "subject"), "s");
  EXPECT_FALSE(header_value(m, "Date"));
  EXPECT_FALSE(header_value("Subject: s\r\n\r\nDate: x\r\n", "Date"));
  EXPECT_FALSE(header_value("X-Message-ID-Like: 1\r\n\r\n", "Message-ID"));
  EXPECT_FALSE(header_value("Message-IDx: 1\r\n\r\n", "Message-ID"));
  EXPECT_FALSE(header_value("", "Date"));
}

TEST(Headers, ReceivedFieldFollowsRfc5321) {
  ReceivedInfo r;
  r.helo = "client.example";
  r.client_ip = "127.0.0.1";
  r.by = "mta.example";
  r.protocol = with_protocol(true, true, true, false);
  r.tls = "TLSv1.3 TLS_AES_256_GCM_SHA384";
  r.id = "0123456789abcdef";
  r.for_rcpt = "x@y.example";
  r.when = 1'795'000'000;
  EXPECT_EQ(
      received_header(r),
      "Received: from client.example ([127.0.0.1])\r\n\tby mta.example (sluice) with ESMTPSA\r\n"
      "\t(TLSv1.3 TLS_AES_256_GCM_SHA384)\r\n\tid 0123456789abcdef\r\n\tfor <x@y.example>; "
      "Wed, 18 Nov 2026 11:06:40 +0000\r\n");
  r.client_ip = "::1";
  r.tls.clear();
  r.for_rcpt.clear();
  EXPECT_NE(received_header(r).find("([IPv6:::1])"), std::string::npos);
  EXPECT_EQ(received_header(r).find("for <"), std::string::npos);
}

TEST(Headers, ProtocolNamesOfRfc3848And6531) {
  EXPECT_EQ(with_protocol(false, false, false, false), "SMTP");
  EXPECT_EQ(with_protocol(true, false, false, false), "ESMTP");
  EXPECT_EQ(with_protocol(true, true, false, false), "ESMTPS");
  EXPECT_EQ(with_protocol(true, false, true, false), "ESMTPA");
  EXPECT_EQ(with_protocol(true, true, true, true), "UTF8SMTPSA");
}

TEST(Headers, TakeFieldRemovesEveryOccurrenceWithItsFoldsAndReturnsTheFirst) {
  std::string m =
      "From: a@example.org\r\nX-Tenant:  acme\r\nSubject: hi\r\nx-tenant: other\r\n"
      "X-Campaign: spring\r\n\tsale\r\nTo: b@example.org\r\n\r\nX-Tenant: body line\r\n";
  EXPECT_EQ(take_field(m, "X-Tenant"), "acme");
  EXPECT_EQ(take_field(m, "X-Campaign"), "spring sale");
  EXPECT_EQ(m,
            "From: a@example.org\r\nSubject: hi\r\nTo: b@example.org\r\n\r\n"
            "X-Tenant: body line\r\n");
  EXPECT_EQ(take_field(m, "X-Tenant"), std::nullopt);  // the body is not the header section
  EXPECT_EQ(take_field(m, "X-Ten"), std::nullopt);
  std::string bare = "X-Tenant: t\nSubject: s\n\nbody\n";  // bare LF line ends
  EXPECT_EQ(take_field(bare, "x-tenant"), "t");
  EXPECT_EQ(bare, "Subject: s\n\nbody\n");
}

}  // namespace
}  // namespace sluice::inbound
