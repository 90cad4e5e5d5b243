#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/json.h"
#include "report/analysis.h"
#include "report/recommend.h"
#include "report/render.h"

namespace sluice::report {
namespace {
namespace json = boost::json;

constexpr int64_t kStart = 1'796'000'000'000;  // 2026-11-30

// A log record as the server writes it (doc/log.md), with the fields the report reads.
struct Rec {
  std::string event = "Delivery";
  int64_t ms = kStart;
  std::string id = "1", recipient = "a@x.test", provider = "gmail", category, rule = "code",
              reply, source = "ip1", tenant, campaign, pool = "default", sender = "s@news.test";
  int64_t received_ms = 0;
  json::object obj() const {
    json::object o{{"ts", utc_timestamp(ms)}, {"event", event},   {"id", id},
                   {"recipient", recipient},  {"provider", provider}, {"site", provider},
                   {"category", event == "Delivery" ? "delivered" : category},
                   {"rule", rule},            {"reply", reply},    {"source", source},
                   {"tenant", tenant},        {"campaign", campaign}, {"pool", pool},
                   {"sender", sender}};
    if (received_ms) o["received_ms"] = received_ms;
    return o;
  }
};

json::object throttle(int64_t ms, const std::string& source, const std::string& limit,
                      const std::string& from, const std::string& to, const std::string& reason,
                      const std::string& provider = "gmail") {
  return {{"ts", utc_timestamp(ms)}, {"event", "ThrottleChange"}, {"provider", provider},
          {"source", source},        {"limit", limit},            {"from", from},
          {"to", to},                {"reason", reason}};
}

const Recommendation* find(const std::vector<Recommendation>& recs, const std::string& kind,
                           const std::string& provider) {
  for (const Recommendation& r : recs)
    if (r.kind == kind && r.provider == provider) return &r;
  return nullptr;
}

TEST(ReportTimestamp, ParsesWhatTheLogWrites) {
  EXPECT_EQ(parse_timestamp(utc_timestamp(kStart + 123)), kStart + 123);
  EXPECT_EQ(parse_timestamp("1970-01-01T00:00:01Z"), 1000);
  EXPECT_EQ(parse_timestamp("2024-02-29T12:00:00.5Z"), 1709208000500);
  EXPECT_FALSE(parse_timestamp("yesterday"));
  EXPECT_FALSE(parse_timestamp("2024-13-01T00:00:00Z"));
}

TEST(ReportAnalysis, CountsRecipientsOnceAcrossRetriesAndOutcomesByCategory) {
  Analysis a;
  Rec r;
  r.event = "TransientFailure";
  r.category = "connection-limit";
  EXPECT_TRUE(a.add(r.obj()));
  r.ms += 5000;
  r.category = "greylist";
  a.add(r.obj());
  r.event = "Delivery";
  r.ms += 60000;
  a.add(r.obj());
  Rec b;
  b.id = "2";
  b.recipient = "b@y.test";
  b.event = "Bounce";
  b.category = "user-unknown";
  a.add(b.obj());
  EXPECT_FALSE(a.add(json::object{{"no", "event"}}));
  a.add(json::object{{"event", "Expiration"}, {"recipient", "c@x.test"}});

  const Group& g = a.providers().at("gmail");
  EXPECT_EQ(g.total.recipients, 2u);
  EXPECT_EQ(g.total.attempts, 4u);
  EXPECT_EQ(g.total.delivered, 1u);
  EXPECT_EQ(g.total.bounced, 1u);
  EXPECT_EQ(g.total.deferred[category_index("connection-limit")], 1u);
  EXPECT_EQ(g.total.deferred[category_index("greylist")], 1u);
  EXPECT_EQ(g.total.bounces[category_index("user-unknown")], 1u);
  EXPECT_EQ(g.expired, 1u);  // x.test's provider is known from its earlier attempts
  EXPECT_EQ(a.domains().at("x.test").total.recipients, 1u);
  EXPECT_EQ(a.domains().at("x.test").provider, "gmail");
  EXPECT_EQ(a.first_ms(), kStart);
  EXPECT_EQ(a.last_ms(), kStart + 65000);
  // Per minute: the first two in minute 0, the delivery a minute later.
  const Timeline t = timeline(a, g);
  EXPECT_EQ(t.minutes, 1);
  ASSERT_EQ(t.buckets, 2u);
  EXPECT_EQ(t.series[category_index("connection-limit")][0], 1u);
  EXPECT_EQ(t.series[category_index("delivered")][1], 1u);
}

// A burst campaign against a provider allowing 3 connections: refusals from two sources, the
// limit learned on both.
Analysis limited_burst() {
  Analysis a;
  for (int i = 0; i < 200; ++i) {
    Rec r;
    r.id = std::to_string(i);
    r.recipient = std::to_string(i);
    r.recipient += "@gmail.test";  // (not "u" + …: GCC 12's -Wrestrict misfires on it)
    r.campaign = "spring";
    r.source = i % 2 ? "ip1" : "ip2";
    r.ms = kStart + i * 100;
    if (i % 4 < 2) {
      r.event = "TransientFailure";
      r.category = "connection-limit";
      r.reply = "421 4.7.0 Try again later, closing connection. (EHLO) - gsmtp";
      a.add(r.obj());
      r.ms += 2000;
    }
    r.event = "Delivery";
    a.add(r.obj());
  }
  a.add(throttle(kStart + 10, "ip1", "connection_limit", "1", "2", "slow start: a connection works"));
  a.add(throttle(kStart + 20, "ip1", "connection_limit", "9", "10", "slow start: a connection works"));
  a.add(throttle(kStart + 900, "ip1", "connection_limit", "10", "3", "connection-limit signal"));
  a.add(throttle(kStart + 950, "ip2", "connection_limit", "10", "4", "connection-limit signal"));
  a.add(throttle(kStart + 5000, "ip2", "connection_limit", "4", "3", "connection-limit signal"));
  return a;
}

TEST(ReportRecommend, ConnectionLimitRefusalsRecommendTheLearnedLimitAndSpreadingTheBurst) {
  const Analysis a = limited_burst();
  const auto recs = recommend(a, {});
  const Recommendation* lower = find(recs, "lower-limit", "gmail");
  ASSERT_NE(lower, nullptr);
  EXPECT_NE(lower->action.find("[shaping.provider.gmail] connection_limit = 3"), std::string::npos)
      << lower->action;
  EXPECT_NE(lower->evidence.find("100 connection-limit deferrals"), std::string::npos)
      << lower->evidence;
  EXPECT_NE(lower->evidence.find("ip1: 10→3"), std::string::npos) << lower->evidence;
  EXPECT_NE(lower->evidence.find("ip2: 10→4→3"), std::string::npos) << lower->evidence;
  const Recommendation* spread = find(recs, "spread-campaign", "gmail");
  ASSERT_NE(spread, nullptr);
  EXPECT_NE(spread->action.find("[campaign.spring] window = \"1h\""), std::string::npos)
      << spread->action;
  EXPECT_NE(spread->evidence.find("sent 200 recipients to gmail in 21 s, 100.0% of the attempts"),
            std::string::npos)
      << spread->evidence;
  EXPECT_EQ(a.providers().at("gmail").configured_limit, "10");
  // Nothing about trust: there was none of it.
  EXPECT_EQ(find(recs, "contact-postmaster", "gmail"), nullptr);
  EXPECT_EQ(find(recs, "fix-authentication", "gmail"), nullptr);
  EXPECT_EQ(find(recs, "raise-limit", "gmail"), nullptr);
}

TEST(ReportRecommend, ALimitTakenBackUpAfterASignalIsWhatWasLearned) {
  // ip2's signal set 2, then connections opened before it kept working: 3 was allowed.
  Analysis a = limited_burst();
  a.add(throttle(kStart + 6000, "ip2", "connection_limit", "3", "2", "connection-limit signal"));
  a.add(throttle(kStart + 6001, "ip2", "connection_limit", "2", "3",
                 "connections set up before the signal work"));
  const auto recs = recommend(a, {});
  const Recommendation* lower = find(recs, "lower-limit", "gmail");
  ASSERT_NE(lower, nullptr);
  EXPECT_NE(lower->action.find("connection_limit = 3"), std::string::npos) << lower->action;
}

TEST(ReportRecommend, AHandfulOfSignalsIsNoise) {
  Analysis a;
  for (int i = 0; i < 1000; ++i) {
    Rec r;
    r.id = std::to_string(i);
    r.ms = kStart + i;
    if (i < 5) {
      r.event = "TransientFailure";
      r.category = i < 3 ? "connection-limit" : "rate-limit";
      a.add(r.obj());
    }
    r.event = "Delivery";
    a.add(r.obj());
  }
  EXPECT_TRUE(recommend(a, {}).empty());
}

TEST(ReportRecommend, ReputationSuspensionsNameThePostmasterPageAndAuthFailuresTheDomain) {
  Analysis a;
  for (int i = 0; i < 30; ++i) {
    Rec r;
    r.id = std::to_string(i);
    r.provider = "microsoft";
    r.event = "TransientFailure";
    r.category = i < 20 ? "reputation" : "authentication";
    r.sender = i < 20 ? "news@shop.test" : "alerts@bank.test";
    r.reply = i < 20 ? "421 4.7.0 [TS01] Messages from this IP temporarily deferred"
                     : "550 5.7.515 Access denied, sending domain does not meet authentication";
    a.add(r.obj());
  }
  a.add(json::object{{"ts", utc_timestamp(kStart)}, {"event", "Suspension"}, {"provider", "microsoft"},
                     {"source", "ip1"}, {"duration", "10m"}, {"reply", "421 4.7.0 [TS01] …"}});
  Context ctx;
  ctx.postmaster["microsoft"] = "https://sendersupport.olc.protection.outlook.com/pm/";
  const auto recs = recommend(a, ctx);
  const Recommendation* pm = find(recs, "contact-postmaster", "microsoft");
  ASSERT_NE(pm, nullptr);
  EXPECT_NE(pm->action.find("https://sendersupport.olc.protection.outlook.com/pm/"),
            std::string::npos);
  EXPECT_NE(pm->evidence.find("1 suspension(s) of ip1"), std::string::npos) << pm->evidence;
  const Recommendation* auth = find(recs, "fix-authentication", "microsoft");
  ASSERT_NE(auth, nullptr);
  EXPECT_NE(auth->action.find("bank.test"), std::string::npos) << auth->action;
  EXPECT_EQ(auth->action.find("shop.test"), std::string::npos) << auth->action;
  EXPECT_EQ(recs.front().severity, 3);
}

TEST(ReportRecommend, ADomainWhoseReceiversFailItsTlsPolicyIsNamed) {
  Analysis a;
  for (int i = 0; i < 3; ++i) {  // bank.test: nothing gets through its MTA-STS policy
    Rec r;
    r.id = std::to_string(i);
    r.recipient = "a@bank.test";
    r.provider = "bankmx";
    r.event = "TransientFailure";
    r.category = "tls";
    r.reply = "451 4.7.5 TLS certificate verification failed for mx.bank.test (mta-sts): "
              "hostname mismatch";
    a.add(r.obj());
  }
  for (int i = 0; i < 100; ++i) {  // shop.test: two refusals among a hundred deliveries
    Rec r;
    r.id = std::to_string(100 + i);
    r.recipient = "a@shop.test";
    r.event = i < 2 ? "TransientFailure" : "Delivery";
    r.category = "tls";
    r.reply = "451 4.7.5 TLS certificate verification failed for mx2.shop.test: expired";
    a.add(r.obj());
  }
  const auto recs = recommend(a, {});
  const Recommendation* bank = find(recs, "fix-tls", "bank.test");
  ASSERT_NE(bank, nullptr);
  EXPECT_NE(bank->action.find("[tls.domain] \"bank.test\" = \"opportunistic\""),
            std::string::npos)
      << bank->action;
  EXPECT_NE(bank->evidence.find("3 TLS refusals, 0 delivered"), std::string::npos)
      << bank->evidence;
  EXPECT_NE(bank->evidence.find("hostname mismatch"), std::string::npos) << bank->evidence;
  EXPECT_EQ(find(recs, "fix-tls", "shop.test"), nullptr);  // noise
}

TEST(ReportRecommend, AQuietReceiverWhileMailWaitsMeansRaiseTheConfiguredLimit) {
  Analysis a;
  a.add(throttle(kStart, "ip1", "connection_limit", "1", "2", "slow start: a connection works",
                 "yahoo"));
  for (int i = 0; i < 150; ++i) {
    Rec r;
    r.id = std::to_string(i);
    r.provider = "yahoo";
    r.ms = kStart + 600'000;
    r.received_ms = kStart;  // ten minutes in the queue
    a.add(r.obj());
  }
  const auto recs = recommend(a, {});
  const Recommendation* raise = find(recs, "raise-limit", "yahoo");
  ASSERT_NE(raise, nullptr);
  EXPECT_NE(raise->action.find("connection_limit from 2 (try 4)"), std::string::npos)
      << raise->action;
  EXPECT_NE(raise->evidence.find("10 min"), std::string::npos) << raise->evidence;
}

TEST(ReportRecommend, ATenantThatHurtsItsSharedPoolShouldMoveAndAWarmingSourceSlow) {
  Analysis a;
  for (int i = 0; i < 400; ++i) {
    Rec r;
    r.id = std::to_string(i);
    r.tenant = i % 2 ? "bulk" : "shop";
    r.source = i % 4 < 2 ? "new" : "old";
    r.pool = "shared";
    r.event = "Delivery";
    if (r.tenant == "bulk" && i % 8 == 1) {  // every fourth of bulk's: unknown user
      r.event = "Bounce";
      r.category = "user-unknown";
    } else if (r.source == "new" && i % 32 == 0) {
      r.event = "TransientFailure";
      r.category = "reputation";
    }
    a.add(r.obj());
  }
  Context ctx;
  ctx.knows_warmup = true;
  ctx.warming = {"new"};
  const auto recs = recommend(a, ctx);
  const Recommendation* move = find(recs, "move-tenant", "gmail");
  ASSERT_NE(move, nullptr);
  EXPECT_NE(move->action.find("tenant bulk off the shared pool shared"), std::string::npos)
      << move->action;
  EXPECT_NE(find(recs, "clean-list", "gmail"), nullptr);
  const Recommendation* warm = find(recs, "slow-warmup", "gmail");
  ASSERT_NE(warm, nullptr);
  EXPECT_NE(warm->action.find("source new"), std::string::npos) << warm->action;
  for (const Recommendation& r : recs) EXPECT_EQ(r.action.find("source old"), std::string::npos);
}

TEST(ReportRender, JsonParsesAndHtmlIsSelfContained) {
  const Analysis a = limited_burst();
  const auto recs = recommend(a, {});
  const json::value doc = json::parse(render_json(a, recs));
  const json::object& gmail = doc.at("providers").at(0).as_object();
  EXPECT_EQ(gmail.at("name"), "gmail");
  EXPECT_EQ(gmail.at("recipients").to_number<uint64_t>(), 200u);
  EXPECT_EQ(gmail.at("deferred").at("connection-limit").to_number<uint64_t>(), 100u);
  EXPECT_EQ(gmail.at("connection_limit").at("learned").at("ip1"), "3");
  EXPECT_EQ(doc.at("recommendations").as_array().size(), recs.size());
  const std::string html = render_html(a, recs, {});
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("data-kind='lower-limit'"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  const std::string text = render_text(a, recs, {});
  EXPECT_NE(text.find("RECOMMENDATIONS"), std::string::npos);
  EXPECT_NE(text.find("connection limit: 100 deferrals"), std::string::npos) << text;
}

}  // namespace
}  // namespace sluice::report
