#include "tlspolicy/mta_sts.h"

#include <gtest/gtest.h>

namespace sluice::tlspolicy {
namespace {

TEST(MtaStsTxt, ReadsTheId) {
  EXPECT_EQ(parse_sts_txt("v=STSv1; id=20160831085700Z;"), "20160831085700Z");
  EXPECT_EQ(parse_sts_txt("v=STSv1;id=abc"), "abc");
  EXPECT_EQ(parse_sts_txt("v=STSv1; id=abc; ext=1"), "abc");
}

TEST(MtaStsTxt, RefusesWhatIsNotAnStsRecord) {
  EXPECT_FALSE(parse_sts_txt("v=spf1 -all"));
  EXPECT_FALSE(parse_sts_txt("id=abc; v=STSv1"));    // the version comes first
  EXPECT_FALSE(parse_sts_txt("v=STSv1;"));           // no id
  EXPECT_FALSE(parse_sts_txt("v=STSv1; id=a-b"));     // id is alphanumeric
  EXPECT_FALSE(parse_sts_txt("v=STSv1; id=" + std::string(33, 'a')));  // at most 32
}

TEST(MtaStsPolicy, ParsesAPolicyWithCrlfOrLf) {
  auto p = parse_sts_policy(
      "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\n"
      "max_age: 86400\r\n");
  ASSERT_TRUE(p.policy) << p.error;
  EXPECT_EQ(p.policy->mode, StsPolicy::Mode::kEnforce);
  EXPECT_EQ(p.policy->max_age, 86400u);
  EXPECT_EQ(p.policy->mx, (std::vector<std::string>{"mail.example.com", "*.example.net"}));
  auto q = parse_sts_policy("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 60\nfuture: x\n");
  ASSERT_TRUE(q.policy) << q.error;
  EXPECT_EQ(q.policy->mode, StsPolicy::Mode::kTesting);
}

TEST(MtaStsPolicy, NamesWhatIsWrong) {
  EXPECT_NE(parse_sts_policy("mode: enforce\nmx: a\nmax_age: 1\n").error.find("version"),
            std::string::npos);
  EXPECT_NE(parse_sts_policy("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n")
                .error.find("strict"),
            std::string::npos);
  EXPECT_NE(parse_sts_policy("version: STSv1\nmode: enforce\nmax_age: 1\n").error.find("mx"),
            std::string::npos);
  EXPECT_NE(parse_sts_policy("version: STSv1\nmode: enforce\nmx: a\n").error.find("max_age"),
            std::string::npos);
  EXPECT_NE(parse_sts_policy("version: STSv1\nmode: enforce\nmx: a\nmax_age: soon\n")
                .error.find("max_age"),
            std::string::npos);
  EXPECT_TRUE(parse_sts_policy("version: STSv1\nmode: none\nmax_age: 1\n").policy);
  // max_age is capped at a year (section 3.2).
  auto p = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 99999999999\n");
  EXPECT_FALSE(p.policy);
  auto q = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 999999999\n");
  ASSERT_TRUE(q.policy);
  EXPECT_EQ(q.policy->max_age, 31'557'600u);
}

TEST(MtaStsPolicy, MatchesMxHostsAsTheRfcSays) {
  StsPolicy p;
  p.mode = StsPolicy::Mode::kEnforce;
  p.mx = {"mail.example.com", "*.example.net"};
  EXPECT_TRUE(mx_allowed(p, "mail.example.com"));
  EXPECT_TRUE(mx_allowed(p, "MAIL.example.com."));
  EXPECT_TRUE(mx_allowed(p, "mx1.example.net"));
  EXPECT_FALSE(mx_allowed(p, "example.net"));          // the wildcard needs one label
  EXPECT_FALSE(mx_allowed(p, "a.b.example.net"));      // and only one
  EXPECT_FALSE(mx_allowed(p, "mail.example.com.evil"));
  EXPECT_FALSE(mx_allowed(p, "xmail.example.com"));
}

}  // namespace
}  // namespace sluice::tlspolicy
