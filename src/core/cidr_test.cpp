#include "core/cidr.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Cidr, Ipv4Ranges) {
  auto loop = Cidr::parse("127.0.0.0/8");
  ASSERT_TRUE(loop);
  EXPECT_TRUE(loop->contains("127.0.0.1"));
  EXPECT_TRUE(loop->contains("127.255.1.2"));
  EXPECT_FALSE(loop->contains("128.0.0.1"));
  EXPECT_TRUE(loop->contains("::ffff:127.0.0.9"));  // v4-mapped
  EXPECT_FALSE(loop->contains("::1"));
  auto host = Cidr::parse("192.0.2.7");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains("192.0.2.7"));
  EXPECT_FALSE(host->contains("192.0.2.8"));
  auto odd = Cidr::parse("10.1.2.0/23");
  EXPECT_TRUE(odd->contains("10.1.3.255"));
  EXPECT_FALSE(odd->contains("10.1.4.0"));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains("8.8.8.8"));
}

TEST(Cidr, Ipv6Ranges) {
  auto one = Cidr::parse("::1/128");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains("::1"));
  EXPECT_FALSE(one->contains("::2"));
  EXPECT_TRUE(Cidr::parse("2001:db8::/32")->contains("2001:db8:ffff::1"));
  EXPECT_FALSE(Cidr::parse("2001:db8::/32")->contains("2001:db9::1"));
}

TEST(Cidr, RejectsMalformed) {
  for (auto bad :
       {"", "127.0.0.1/33", "::1/129", "127.0.0/8", "localhost", "1.2.3.4/x", "1.2.3.4/"}) {
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  }
  EXPECT_FALSE(Cidr::parse("127.0.0.0/8")->contains("not an address"));
}

}  // namespace
}  // namespace sluice
