#include "spool/envelope.h"

#include <gtest/gtest.h>

namespace sluice::spool {
namespace {

MessageMeta sample() {
  MessageMeta m;
  m.id = 0x0123456789abcdefULL;
  m.received_ms = 1'795'000'000'000;
  m.sender = "bounce@example.com";
  m.recipients = {{"a@example.org", kNotifyFailure | kNotifyDelay, "rfc822", "a@example.org"},
                  {"j\xc3\xb6rg@example.de", 0, "", ""}};
  m.body_type = BodyType::k8BitMime;
  m.smtputf8 = true;
  m.ret = DsnRet::kHeaders;
  m.envid = "QQ314159";
  m.size = 4096;
  m.client_ip = "127.0.0.1";
  m.helo = "client.example";
  m.auth_user = "alice";
  m.tenant = "t1";
  m.campaign = "c1";
  m.pool = "shared";
  m.attempts = 3;
  m.next_due_ms = -5;
  return m;
}

TEST(Envelope, RoundTrips) {
  const MessageMeta m = sample();
  auto back = decode(encode(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, m);
  MessageMeta empty;
  EXPECT_EQ(*decode(encode(empty)), empty);
}

TEST(Envelope, RefusesCorruptRecords) {
  const std::string bytes = encode(sample());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(decode(bytes.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(decode(bytes + "x").ok());
  std::string v2 = bytes;
  v2[0] = 2;
  EXPECT_EQ(decode(v2).error().message, "spool metadata: unknown format version 2");
}

TEST(Envelope, IdsFormatAsSixteenHexDigits) {
  EXPECT_EQ(format_id(0x0123456789abcdefULL), "0123456789abcdef");
  EXPECT_EQ(parse_id("0123456789abcdef"), 0x0123456789abcdefULL);
  EXPECT_FALSE(parse_id("0123"));
  EXPECT_FALSE(parse_id("0123456789abcdeg"));
}

}  // namespace
}  // namespace sluice::spool
