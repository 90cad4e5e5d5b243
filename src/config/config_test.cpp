#include "config/config.h"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

// The built-in schedules, as a configuration without [warmup] sees them.
std::map<std::string, WarmupSchedule> builtin_warmups_for_test() {
  auto r = load_config_text("", "empty.toml");
  return r.ok() ? r->egress.warmups : std::map<std::string, WarmupSchedule>{};
}

std::vector<ConfigError> errors_of(std::string_view text) {
  auto r = load_config_text(text, "test.toml");
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? std::vector<ConfigError>{} : r.error();
}

TEST(Config, EmptyFileGivesTheDefaults) {
  auto r = load_config_text("", "empty.toml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->smtp.listen, (Endpoint{"127.0.0.1", 2525}));
  EXPECT_EQ(r->http.listen, (Endpoint{"127.0.0.1", 8025}));
  EXPECT_EQ(r->spool.path, "var/spool");
  EXPECT_EQ(r->server.threads, 0u);
  EXPECT_EQ(r->server.shutdown_grace, std::chrono::seconds(30));
}

TEST(Config, ShippedDefaultConfigLoadsAndMatchesTheBuiltInDefaults) {
  auto r = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/etc/sluice.toml");
  ASSERT_TRUE(r.ok()) << (r.ok() ? "" : r.error()[0].str());
  auto d = load_config_text("", "empty.toml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(r->smtp.listen, d->smtp.listen);
  EXPECT_EQ(r->http.listen, d->http.listen);
  EXPECT_EQ(r->spool.path, d->spool.path);
  EXPECT_EQ(r->log.path, d->log.path);
  EXPECT_EQ(r->server.hostname, d->server.hostname);
  EXPECT_EQ(r->server.shutdown_grace, d->server.shutdown_grace);
  EXPECT_EQ(r->shaping.tuning, d->shaping.tuning);
  EXPECT_EQ(r->shaping.defaults, d->shaping.defaults);
}

TEST(Config, ShapingDefaultsAndOverridesByProviderSiteAndDomain) {
  auto r = load_config_text(R"(
[shaping]
hold = "2s"
probe_interval = "1m"
[shaping.default]
connection_limit = 32
max_deliveries_per_connection = 100
max_message_rate = "100/s"
adaptive = true
[shaping.provider.microsoft]
connection_limit = 10
[shaping.site."mx1.example.test mx2.example.test"]
max_connection_rate = "60/m"
[shaping.domain."Example.TEST"]
connection_limit = 3
adaptive = false
)",
                            "shaping.toml");
  ASSERT_TRUE(r.ok()) << (r.ok() ? "" : r.error()[0].str());
  const auto& sh = r->shaping;
  EXPECT_EQ(sh.tuning.hold, Duration(2000));
  EXPECT_EQ(sh.tuning.probe_interval, Duration(60'000));
  EXPECT_EQ(sh.defaults.max_message_rate, (Rate{100, Duration(1000)}));
  const auto ms = sh.limits_for("microsoft", "x", "outlook.com");
  EXPECT_EQ(ms.connection_limit, 10u);
  EXPECT_EQ(ms.max_deliveries_per_connection, 100u);
  EXPECT_TRUE(ms.adaptive);
  const auto site = sh.limits_for("", "mx1.example.test mx2.example.test", "a.test");
  EXPECT_EQ(site.max_connection_rate, (Rate{60, Duration(60'000)}));
  EXPECT_EQ(site.connection_limit, 32u);
  const auto dom = sh.limits_for("microsoft", "x", "example.test");
  EXPECT_EQ(dom.connection_limit, 3u);  // the domain wins over the provider
  EXPECT_FALSE(dom.adaptive);
}

TEST(Config, ShapingMistakesNameTheLine) {
  auto r = load_config_text(R"([shaping.default]
connection_limit = 0
max_message_rate = "fast"
[shaping.provider.gmail]
conection_limit = 3
[delivery]
max_connections_per_site = 4
)",
                            "bad.toml");
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& e : r.error()) all += e.str() + "\n";
  EXPECT_NE(all.find("bad.toml:2:"), std::string::npos) << all;
  EXPECT_NE(all.find("shaping.default.max_message_rate"), std::string::npos) << all;
  EXPECT_NE(all.find("shaping.provider.gmail.conection_limit"), std::string::npos) << all;
  EXPECT_NE(all.find("moved to [shaping.default] as connection_limit"), std::string::npos) << all;
}

TEST(Config, TlsPoliciesByProviderAndDomain) {
  auto d = load_config_text("", "empty.toml");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->tls.mta_sts);  // on unless turned off
  EXPECT_FALSE(d->tls.dane);    // needs a validating resolver
  auto r = load_config_text(R"([tls]
dane = true
mta_sts_port = 8443
[tls.provider]
gmail = "verify"
[tls.domain]
"Bank.Example" = "required"
)",
                            "tls.toml");
  ASSERT_TRUE(r.ok()) << r.error()[0].str();
  EXPECT_TRUE(r->tls.dane);
  EXPECT_EQ(r->tls.mta_sts_port, 8443);
  EXPECT_EQ(r->tls.providers.at("gmail"), TlsPolicy::kVerify);
  EXPECT_EQ(r->tls.domains.at("bank.example"), TlsPolicy::kRequired);
  // Shaping by site ignores the policy's suffix on a domain's own site.
  ShapingConfig s;
  s.sites["mx.example"].connection_limit = 3;
  EXPECT_EQ(s.limits_for("", "mx.example [mta-sts]", "").connection_limit, 3u);

  auto e = errors_of("[tls]\nmta_sts = true\n[tls.domain]\n\"x.example\" = \"strict\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].line, 4u);
  EXPECT_EQ(e[0].key, "tls.domain.x.example");
  EXPECT_NE(e[0].message.find("verify"), std::string::npos) << e[0].message;
  EXPECT_FALSE(errors_of("[tls]\nmta_sts_port = 0\n").empty());
  EXPECT_FALSE(errors_of("[tls]\nstrict = true\n").empty());
}

TEST(Config, SenderLoginsAreReadAndBadPatternsNameTheLine) {
  auto good = load_config_text(R"([smtp.senders]
alice = ["alice@example.org", "@alice.example"]
"*" = ["*"]
)",
                               "good.toml");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->smtp.senders.at("alice"),
            (std::vector<std::string>{"alice@example.org", "@alice.example"}));
  EXPECT_EQ(good->smtp.senders.at("*"), std::vector<std::string>{"*"});
  auto bad = load_config_text("[smtp.senders]\nalice = [\"example.org\"]\n", "bad.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error()[0].line, 2u);
  EXPECT_NE(bad.error()[0].str().find("smtp.senders.alice"), std::string::npos)
      << bad.error()[0].str();
}

TEST(Config, ReadsEveryKey) {
  auto r = load_config_text(R"(
[server]
hostname = "mta1.example.net"
threads = 4
shutdown_grace = "1m30s"
[smtp]
listen = "[::1]:25"
[http]
listen = "localhost:8080"
[spool]
path = "/var/lib/sluice"
[log]
path = "/var/log/sluice.jsonl"
)",
                            "full.toml");
  ASSERT_TRUE(r.ok()) << (r.ok() ? "" : r.error()[0].str());
  EXPECT_EQ(r->server.hostname, "mta1.example.net");
  EXPECT_EQ(r->server.threads, 4u);
  EXPECT_EQ(r->server.shutdown_grace, std::chrono::seconds(90));
  EXPECT_EQ(r->smtp.listen, (Endpoint{"::1", 25}));
  EXPECT_EQ(r->smtp.listen.str(), "[::1]:25");
  EXPECT_EQ(r->http.listen.str(), "localhost:8080");
  EXPECT_EQ(r->spool.path, "/var/lib/sluice");
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  auto e = errors_of("[smtp]\nlisten = \"127.0.0.1:25\"\nlistne = \"x\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].str(), "test.toml:3:10: smtp.listne: unknown key");
}

TEST(Config, UnknownSection) {
  auto e = errors_of("\n[smpt]\nlisten = \"127.0.0.1:25\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].key, "smpt");
  EXPECT_EQ(e[0].line, 2u);
}

TEST(Config, WrongTypes) {
  auto e = errors_of("[server]\nthreads = \"four\"\nhostname = 7\n[smtp]\nlisten = 2525\n");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].str(), "test.toml:2:11: server.threads: expected an integer, found a string");
  EXPECT_EQ(e[1].str(), "test.toml:3:12: server.hostname: expected a string, found an integer");
  EXPECT_EQ(e[2].key, "smtp.listen");
  EXPECT_EQ(e[2].line, 5u);
  auto t = errors_of("smtp = 1\n");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].message, "expected a table [smtp]");
}

TEST(Config, OutOfRangeValues) {
  auto e = errors_of("[server]\nthreads = 1000\nshutdown_grace = \"1h\"\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].str(), "test.toml:2:11: server.threads: value 1000 is out of range 0..256");
  EXPECT_EQ(e[1].str(),
            "test.toml:3:18: server.shutdown_grace: duration 1h is out of range 0s..10m");
  auto neg = errors_of("[server]\nthreads = -1\n");
  ASSERT_EQ(neg.size(), 1u);
}

TEST(Config, BadUnitsAndEndpoints) {
  EXPECT_EQ(errors_of("[server]\nshutdown_grace = \"soon\"\n")[0].key, "server.shutdown_grace");
  for (auto bad : {"\"127.0.0.1\"", "\"127.0.0.1:0\"", "\"127.0.0.1:70000\"", "\"example.com:25\"",
                   "\"[::1:25\"", "\"[zz]:25\"", "\"\""}) {
    auto e = errors_of(std::string("[smtp]\nlisten = ") + bad + "\n");
    ASSERT_EQ(e.size(), 1u) << bad;
    EXPECT_EQ(e[0].key, "smtp.listen");
    EXPECT_EQ(e[0].line, 2u);
  }
  EXPECT_EQ(errors_of("[spool]\npath = \"\"\n")[0].message, "must not be empty");
}

TEST(Config, TomlSyntaxErrorNamesTheLine) {
  auto e = errors_of("[server]\nthreads = \n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].line, 2u);
  EXPECT_EQ(e[0].key, "");
}

TEST(Config, ReportsEveryErrorAtOnce) {
  EXPECT_EQ(errors_of("[server]\nthreads = -1\nx = 1\n[smtp]\nlisten = \"nope\"\n[y]\n").size(),
            4u);
}

TEST(Config, MissingFile) {
  auto r = load_config_file("/nonexistent/sluice.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error()[0].str(), "/nonexistent/sluice.toml: cannot open the configuration file");
}

TEST(Config, WithoutSourcesOneDefaultSourceAndPoolKeepOldConfigsWorking) {
  auto r = load_config_text("[delivery]\nsource_ip = \"127.0.0.9\"\nhelo_name = \"mx.test\"\n",
                            "t.toml");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->egress.sources.size(), 1u);
  EXPECT_EQ(r->egress.sources.at("default"), (EgressSource{"default", "127.0.0.9", "mx.test", "", 0, {}}));
  ASSERT_EQ(r->egress.pools.size(), 1u);
  EXPECT_EQ(r->egress.pools.at("default").sources,
            (std::vector<std::pair<std::string, uint32_t>>{{"default", 1}}));
}

TEST(Config, SourcesPoolsAndTenants) {
  auto r = load_config_text(R"(
[source.ip1]
address = "127.0.0.2"
ehlo = "mta1.example.test"

[source.ip2]
address = "127.0.0.3"
warmup = "default"
warmup_start = "2026-11-28"

[source.ip3]
address = "127.0.0.4"
connection_limit = 4
max_message_rate = "100/m"

[pool.default]
sources = { ip1 = 1, ip2 = 3 }

[pool.dedicated]
sources = ["ip3"]

[tenant.acme]
pool = "default"

[tenant.bigco]
pool = "dedicated"
users = ["bigco-smtp", "bigco-api"]
priority = true

[campaign.spring]
window = "1h"

[campaign.drip]
rate = "600/h"
)",
                            "t.toml");
  ASSERT_TRUE(r.ok()) << r.error()[0].str();
  const EgressConfig& e = r->egress;
  EXPECT_EQ(e.sources.size(), 3u);
  EXPECT_EQ(e.sources.at("ip1").ehlo, "mta1.example.test");
  EXPECT_EQ(e.pools.at("default").sources,
            (std::vector<std::pair<std::string, uint32_t>>{{"ip1", 1}, {"ip2", 3}}));
  EXPECT_EQ(e.pools.at("dedicated").sources,
            (std::vector<std::pair<std::string, uint32_t>>{{"ip3", 1}}));
  EXPECT_EQ(e.tenant_of_user("acme"), "acme");
  EXPECT_EQ(e.tenant_of_user("bigco-api"), "bigco");
  EXPECT_EQ(e.tenant_of_user("stranger"), "");
  EXPECT_EQ(e.tenant_header, "X-Tenant");
  EXPECT_EQ(e.sources.at("ip3").limits.connection_limit, 4u);
  EXPECT_EQ(e.sources.at("ip3").limits.max_message_rate->count, 100u);
  EXPECT_FALSE(e.sources.at("ip1").limits.connection_limit.has_value());
  EXPECT_TRUE(e.tenants.at("bigco").priority);
  EXPECT_FALSE(e.tenants.at("acme").priority);
  EXPECT_EQ(e.sources.at("ip1").warmup, "");
  EXPECT_EQ(e.sources.at("ip2").warmup, "default");
  EXPECT_EQ(e.sources.at("ip2").warmup_start_ms, 1'795'824'000'000);  // 2026-11-28T00:00Z
  EXPECT_EQ(e.campaigns.at("spring").window, std::chrono::hours(1));
  EXPECT_FALSE(e.campaigns.at("spring").rate.limited());
  EXPECT_NEAR(e.campaigns.at("drip").rate.per_second(), 600.0 / 3600, 1e-9);
}

TEST(Config, SourcesWithoutPoolDefaultMakeOneOfThemAll) {
  auto r = load_config_text(
      "[source.a]\naddress = \"127.0.0.2\"\n[source.b]\naddress = \"127.0.0.3\"\n", "t.toml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->egress.pools.at("default").sources,
            (std::vector<std::pair<std::string, uint32_t>>{{"a", 1}, {"b", 1}}));
}

TEST(Config, EgressMistakesNameTheLine) {
  auto errors = errors_of(R"(
[delivery]
source_ip = "127.0.0.5"
[source.a]
address = "not an address"
[source.b]
ehlo = "x"
[source.c]
address = "127.0.0.2"
warmup = "nope"
[source.d]
address = "127.0.0.2"
[pool.p]
sources = { a = 0, nope = 1 }
[tenant.t]
pool = "missing"
[campaign.both]
window = "1h"
rate = "1/s"
[campaign.none]
)");
  std::string all;
  for (const auto& e : errors) all += e.str() + "\n";
  EXPECT_NE(all.find("test.toml:3:13: delivery.source_ip: [source.NAME] tables are configured"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("test.toml:5:11: source.a.address: expected an IPv4"), std::string::npos)
      << all;
  EXPECT_NE(all.find("source.b.address: a source needs an address"), std::string::npos) << all;
  EXPECT_NE(all.find("test.toml:10:10: source.c.warmup: no warm-up schedule \"nope\""),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("test.toml:12:11: source.d.address: source c has this address already"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pool.p.sources: the weight of a must be a whole number 1..1000"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("pool.p.sources: no [source.nope] is configured"), std::string::npos) << all;
  EXPECT_NE(all.find("test.toml:16:8: tenant.t.pool: no [pool.missing] is configured"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("campaign.both.rate: a campaign has a window or a rate, not both"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("campaign.none.window: a campaign needs a window"), std::string::npos) << all;
}

TEST(Config, WarmUpSchedulesBuiltInAndOwn) {
  auto r = load_config_text(R"(
[warmup.gentle]
daily = [10, 20]
hourly = [2]
[warmup.gentle.provider.gmail]
daily = [5]
[warmup.default]
daily = [1]
)",
                            "t.toml");
  ASSERT_TRUE(r.ok()) << r.error()[0].str();
  const auto& w = r->egress.warmups;
  EXPECT_EQ(w.at("gentle").caps.daily, (std::vector<uint64_t>{10, 20}));
  EXPECT_EQ(w.at("gentle").caps.hourly, (std::vector<uint64_t>{2}));
  EXPECT_EQ(w.at("gentle").providers.at("gmail").daily, (std::vector<uint64_t>{5}));
  EXPECT_EQ(w.at("default").caps.daily, (std::vector<uint64_t>{1}));  // replaces the built-in
  EXPECT_TRUE(w.count("short"));                                       // built in
  const auto builtin = builtin_warmups_for_test();
  EXPECT_EQ(builtin.at("default").caps.daily.front(), 50u);
  EXPECT_TRUE(builtin.at("default").providers.count("microsoft"));
  auto errors = errors_of("[warmup.bad]\ndaily = [10, 0]\n[warmup.empty]\nhourly = [1]\n");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].str(), "test.toml:2:14: warmup.bad.daily: each cap must be a whole number "
                             "of messages, 1 or more");
  EXPECT_EQ(errors[1].key, "warmup.empty.daily");
}

TEST(Config, ChangedSectionsNameWhatAReloadMustApplyOrRestart) {
  auto a = load_config_text("[shaping.default]\nconnection_limit = 10\n", "a.toml");
  auto b = load_config_text("[shaping.default]\nconnection_limit = 5\n[smtp]\nlisten = \"127.0.0.1:2600\"\n"
                            "[route.\"x.test\"]\nhost = \"127.0.0.1\"\n", "b.toml");
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(changed_sections(*a, *a).empty());
  EXPECT_EQ(changed_sections(*a, *b), (std::vector<std::string>{"smtp", "shaping", "route"}));
}

}  // namespace
}  // namespace sluice::config
