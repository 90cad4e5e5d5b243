#include "observe/recent_replies.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sluice::observe {
namespace {
namespace json = boost::json;

TEST(RecentReplies, KeepsTheNewestFivePerProviderAndTheMostRecentProvidersFirst) {
  RecentReplies r;
  for (int i = 0; i < 7; ++i)
    r.add("gmail", {1000 + i, "connection-limit", "banner", std::string("421 4.7.0 n").append(std::to_string(i)), "ip1"});
  r.add("yahoo", {2000, "rate-limit", "mail", "451 4.7.1 slow \"down\"", "ip2"});
  const json::value doc = json::parse(r.json());
  const json::array& providers = doc.as_array();
  ASSERT_EQ(providers.size(), 2u);
  EXPECT_EQ(providers[0].at("provider"), "yahoo");  // heard last
  EXPECT_EQ(providers[0].at("replies").at(0).at("reply"), "451 4.7.1 slow \"down\"");
  const json::array& gmail = providers[1].at("replies").as_array();
  ASSERT_EQ(gmail.size(), RecentReplies::kPerProvider);
  EXPECT_EQ(gmail[0].at("reply"), "421 4.7.0 n6");  // newest first
  EXPECT_EQ(gmail[4].at("reply"), "421 4.7.0 n2");
  EXPECT_EQ(gmail[0].at("source"), "ip1");
  EXPECT_EQ(gmail[0].at("ts"), "1970-01-01T00:00:01.006Z");
}

TEST(RecentReplies, ForgetsTheProviderHeardLeastRecentlyBeyondTheBound) {
  RecentReplies r;
  for (size_t i = 0; i <= RecentReplies::kProviders; ++i)
    r.add(std::string("p").append(std::to_string(i)), {0, "other", "rcpt", "450", ""});
  r.add("p1", {0, "other", "rcpt", "450 again", ""});  // p1 heard again: p0 is the oldest
  r.add("new", {0, "other", "rcpt", "450", ""});
  const json::array providers = json::parse(r.json()).as_array();
  EXPECT_EQ(providers.size(), RecentReplies::kProviders);
  EXPECT_EQ(providers[0].at("provider"), "new");
  EXPECT_EQ(providers[1].at("provider"), "p1");
  for (const auto& p : providers) {
    EXPECT_NE(p.at("provider"), "p0");
    EXPECT_NE(p.at("provider"), "p2");
  }
}

}  // namespace
}  // namespace sluice::observe
