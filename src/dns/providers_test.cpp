#include "dns/providers.h"

#include <gtest/gtest.h>

#include "dns/resolver.h"

namespace sluice::dns {
namespace {

TEST(Providers, ShippedRulesLoadAndMatchKnownMxHosts) {
  auto p = Providers::load(std::string(SLUICE_SOURCE_DIR) + "/etc/providers.toml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->match({"alt1.aspmx.l.google.com"}), "gmail");
  EXPECT_EQ(p->match({"example-com.mail.protection.outlook.com"}), "microsoft");
  EXPECT_EQ(p->match({"mta5.am0.yahoodns.net"}), "yahoo");
  EXPECT_EQ(p->match({"MX01.MAIL.ICLOUD.COM"}), "apple");
  EXPECT_EQ(p->match({"mx.example.org"}), "");
  EXPECT_EQ(p->match({"google.com"}), "");  // "*.google.com" needs a label before it
}

TEST(Providers, ErrorsNameTheFile) {
  EXPECT_FALSE(Providers::parse("[[provider]]\nname = \"x\"\n", "p.toml").ok());
  EXPECT_FALSE(Providers::parse("nonsense = [", "p.toml").ok());
}

TEST(Site, SortedNormalisedMxNames) {
  EXPECT_EQ(site_of({"MX2.example.com.", "mx1.example.com", "mx2.example.com"}),
            "mx1.example.com,mx2.example.com");
  EXPECT_EQ(site_of({"b.example", "a.example"}), site_of({"a.example", "b.example"}));
}

}  // namespace
}  // namespace sluice::dns
