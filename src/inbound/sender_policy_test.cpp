#include "inbound/sender_policy.h"

#include <gtest/gtest.h>

namespace sluice::inbound {
namespace {

TEST(SenderPolicy, ALoginSendsOnlyAsItsAddressesAndDomains) {
  const SenderLogins t{{"alice", {"alice@example.org", "@alice.example"}},
                       {"ops", {"*"}},
                       {"*", {"@shared.example"}}};
  EXPECT_TRUE(may_send_as(t, "alice", "alice@example.org"));
  EXPECT_TRUE(may_send_as(t, "alice", "Alice@Example.ORG"));
  EXPECT_TRUE(may_send_as(t, "alice", "news@alice.example"));
  EXPECT_FALSE(may_send_as(t, "alice", "bob@example.org"));
  EXPECT_FALSE(may_send_as(t, "alice", "alice@example.org.evil"));
  EXPECT_FALSE(may_send_as(t, "alice", "x@sub.alice.example"));
  EXPECT_TRUE(may_send_as(t, "ops", "anyone@anywhere.example"));
  EXPECT_TRUE(may_send_as(t, "carol", "carol@shared.example"));  // "*": every other login
  EXPECT_FALSE(may_send_as(t, "carol", "carol@example.org"));
  EXPECT_TRUE(may_send_as(t, "alice", ""));  // the null sender
}

TEST(SenderPolicy, NoTableAllowsEverySenderAndNoDefaultAllowsNone) {
  EXPECT_TRUE(may_send_as({}, "alice", "anyone@example.org"));
  const SenderLogins t{{"alice", {"@example.org"}}};
  EXPECT_FALSE(may_send_as(t, "bob", "bob@example.org"));
}

}  // namespace
}  // namespace sluice::inbound
