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

TEST(AdminRules, ASiteSelectorMatchesOnceResolvedAndRebindsAreTheirOwnKind) {
  AdminRules rules;
  AdminRule by_site;
  by_site.kind = AdminRule::Kind::kSuspend;
  by_site.site = "mx.example.net";
  by_site.until_ms = 1000;
  ASSERT_TRUE(rules.add(by_site));
  EXPECT_EQ(rules.match(message("", ""), "a.test", 10), nullptr);  // not resolved yet
  EXPECT_NE(rules.match(message("", ""), "a.test", 10, "mx.example.net"), nullptr);
  EXPECT_EQ(rules.match(message("", ""), "a.test", 10, "mx.other.net"), nullptr);

  AdminRule first, second;
  first.kind = second.kind = AdminRule::Kind::kRebind;
  first.tenant = second.tenant = "acme";
  first.pool = "shared";
  second.pool = "dedicated";
  first.until_ms = second.until_ms = 1000;
  ASSERT_TRUE(rules.add(first));
  ASSERT_TRUE(rules.add(second));
  // A rebind never holds or bounces; the newest in force wins.
  EXPECT_EQ(rules.match(message("acme", ""), "b.test", 10), nullptr);
  ASSERT_NE(rules.rebind(message("acme", ""), "b.test", "", 10), nullptr);
  EXPECT_EQ(rules.rebind(message("acme", ""), "b.test", "", 10)->pool, "dedicated");
  EXPECT_EQ(rules.rebind(message("other", ""), "b.test", "", 10), nullptr);
  EXPECT_EQ(rules.rebind(message("acme", ""), "b.test", "", 1000), nullptr);  // ended
}

}  // namespace
}  // namespace sluice::queue
