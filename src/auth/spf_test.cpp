#include "auth/spf.h"

#include <gtest/gtest.h>

#include <map>

namespace sluice::auth {
namespace {

// A zone in memory: name → TXT records, A, AAAA, MX; anything else does not exist.
struct Zone {
  std::map<std::string, std::vector<std::string>> txt, a, aaaa, mx;
  int queries = 0;
  SpfDns dns() {
    auto from = [this](std::map<std::string, std::vector<std::string>>& m) {
      return [this, &m](const std::string& name) {
        ++queries;
        dns::Answer ans;
        auto it = m.find(name);
        ans.status = it == m.end() ? dns::Answer::Status::kNxDomain : dns::Answer::Status::kOk;
        if (it != m.end()) ans.values = it->second;
        return ans;
      };
    };
    return {from(txt), from(a), from(aaaa), from(mx)};
  }
};

TEST(Spf, MechanismsQualifiersIncludesAndRedirect) {
  Zone z;
  z.txt["example.test"] = {"some other text", "v=spf1 ip4:192.0.2.0/24 a mx include:esp.test ~all"};
  z.a["example.test"] = {"198.51.100.7"};
  z.mx["example.test"] = {"mx.example.test"};
  z.a["mx.example.test"] = {"198.51.100.25"};
  z.txt["esp.test"] = {"v=spf1 ip6:2001:db8::/32 ip4:203.0.113.0/28 -all"};
  z.txt["other.test"] = {"v=spf1 redirect=example.test"};
  SpfDns d = z.dns();
  EXPECT_EQ(check_host(d, "192.0.2.9", "example.test", "a@example.test").result, "pass");
  EXPECT_EQ(check_host(d, "198.51.100.7", "example.test", "a@example.test").matched, "a");
  EXPECT_EQ(check_host(d, "198.51.100.25", "example.test", "a@example.test").matched, "mx");
  const SpfResult inc = check_host(d, "203.0.113.5", "example.test", "a@example.test");
  EXPECT_EQ(inc.result, "pass");
  EXPECT_EQ(inc.matched, "include:esp.test");
  EXPECT_EQ(inc.lookups, 3);  // a, mx, include
  EXPECT_EQ(check_host(d, "2001:db8::1", "example.test", "a@example.test").result, "pass");
  const SpfResult soft = check_host(d, "127.0.0.2", "example.test", "a@example.test");
  EXPECT_EQ(soft.result, "softfail");
  EXPECT_EQ(soft.matched, "~all");
  EXPECT_EQ(soft.record, "v=spf1 ip4:192.0.2.0/24 a mx include:esp.test ~all");
  EXPECT_EQ(check_host(d, "192.0.2.1", "other.test", "a@other.test").result, "pass");
  EXPECT_EQ(check_host(d, "192.0.2.1", "nothing.test", "a@nothing.test").result, "none");
}

TEST(Spf, LimitsAndErrors) {
  Zone z;
  std::string many = "v=spf1";
  for (int i = 0; i < 11; ++i) {
    const std::string n = std::to_string(i);
    const std::string name = std::string("i").append(n).append(".test");
    many.append(" include:").append(name);
    z.txt[name] = {std::string("v=spf1 ip4:10.0.0.").append(n).append(" -all")};
  }
  z.txt["many.test"] = {many + " -all"};
  z.txt["two.test"] = {"v=spf1 -all", "v=spf1 +all"};
  z.txt["bad.test"] = {"v=spf1 frobnicate -all"};
  z.txt["void.test"] = {"v=spf1 a:x1.test a:x2.test a:x3.test -all"};
  z.txt["noinc.test"] = {"v=spf1 include:missing.test -all"};
  SpfDns d = z.dns();
  const SpfResult r = check_host(d, "127.0.0.2", "many.test", "a@many.test");
  EXPECT_EQ(r.result, "permerror");
  EXPECT_NE(r.problem.find("more than 10"), std::string::npos);
  EXPECT_EQ(check_host(d, "10.0.0.3", "many.test", "a@many.test").result, "pass");  // found early
  EXPECT_EQ(check_host(d, "1.2.3.4", "two.test", "").result, "permerror");
  EXPECT_EQ(check_host(d, "1.2.3.4", "bad.test", "").result, "permerror");
  EXPECT_EQ(check_host(d, "1.2.3.4", "void.test", "").result, "permerror");
  EXPECT_EQ(check_host(d, "1.2.3.4", "noinc.test", "").result, "permerror");
}

TEST(Spf, Macros) {
  Zone z;
  z.txt["m.test"] = {"v=spf1 exists:%{ir}.%{l}._spf.%{d} -all"};
  z.a["2.0.0.127.alice._spf.m.test"] = {"127.0.0.2"};
  SpfDns d = z.dns();
  EXPECT_EQ(check_host(d, "127.0.0.2", "m.test", "alice@m.test").result, "pass");
  EXPECT_EQ(check_host(d, "127.0.0.2", "m.test", "bob@m.test").result, "fail");
}

}  // namespace
}  // namespace sluice::auth
