#include "inbound/credentials.h"

#include <gtest/gtest.h>

namespace sluice::inbound {
namespace {

TEST(Credentials, VerifiesHashedPasswords) {
  const std::string text = "# users\n\nalice:" + Credentials::hash_password("s3cret", 1000) +
                           "\nbob:" + Credentials::hash_password("hunter2", 1000) + "\r\n";
  auto c = Credentials::parse(text, "creds");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->size(), 2u);
  EXPECT_TRUE((*c)->verify("alice", "s3cret"));
  EXPECT_TRUE((*c)->verify("bob", "hunter2"));
  EXPECT_FALSE((*c)->verify("alice", "hunter2"));
  EXPECT_FALSE((*c)->verify("alice", ""));
  EXPECT_FALSE((*c)->verify("mallory", "s3cret"));
}

TEST(Credentials, SaltMakesEveryHashDifferent) {
  EXPECT_NE(Credentials::hash_password("same", 1000), Credentials::hash_password("same", 1000));
}

TEST(Credentials, ErrorsNameTheLine) {
  auto c = Credentials::parse(
      "alice:" + Credentials::hash_password("x", 1000) + "\nbob:plaintext\n", "f");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "f:2: unknown hash scheme (expected $pbkdf2-sha256$)");
  EXPECT_FALSE(Credentials::parse("nocolon\n", "f").ok());
  EXPECT_FALSE(
      Credentials::parse("a:$pbkdf2-sha256$10$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==\n", "f").ok());
  const std::string line = "a:" + Credentials::hash_password("x", 1000) + "\n";
  EXPECT_EQ(Credentials::parse(line + line, "f").error().message, "f:2: user a appears twice");
}

}  // namespace
}  // namespace sluice::inbound
