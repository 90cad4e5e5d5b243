#include "queue/admin_rules.h"

#include <gtest/gtest.h>

namespace sluice::queue {
namespace {

spool::MessageMeta message(std::string tenant, std::string campaign) {
  spool::MessageMeta m;
  m.tenant = std::move(tenant);
  m.campaign = std::move(campaign);
  return m;
}

TEST(AdminRules, SelectorsMatchTogetherAndBouncesComeFirst) {
  AdminRules rules;
  AdminRule suspend;
  suspend.kind = AdminRule::Kind::kSuspend;
  suspend.domain = "example.com";
  suspend.until_ms = 1000;
  const auto s = rules.add(suspend);
  AdminRule bounce;
  bounce.kind = AdminRule::Kind::kBounce;
  bounce.domain = "example.com";
  bounce.campaign = "spam";
  bounce.until_ms = 500;
  const auto b = rules.add(bounce);
  ASSERT_TRUE(s && b);
  EXPECT_EQ(rules.match(message("", "news"), "example.com", 10)->id, *s);
  EXPECT_EQ(rules.match(message("", "spam"), "example.com", 10)->id, *b);
  EXPECT_EQ(rules.match(message("", "spam"), "other.com", 10), nullptr);
  EXPECT_EQ(rules.match(message("", "spam"), "example.com", 600)->id, *s);  // bounce over
  EXPECT_EQ(rules.match(message("", "spam"), "example.com", 1000), nullptr);
  EXPECT_EQ(rules.list(AdminRule::Kind::kSuspend, 600).size(), 1u);
  EXPECT_EQ(rules.list(AdminRule::Kind::kBounce, 600).size(), 0u);  // expired, dropped
  EXPECT_TRUE(rules.remove(*s).has_value());
  EXPECT_FALSE(rules.remove(*s).has_value());
  EXPECT_FALSE(rules.add(AdminRule{}).has_value());  // no selector: refused
}

}  // namespace
}  // namespace sluice::queue
