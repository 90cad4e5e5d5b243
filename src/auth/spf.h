// SPF evaluation (RFC 7208 check_host()) for `sluice auth-check`: would DOMAIN's record
// authorize a source address? Mechanisms all, include, a, mx, ptr (never matches: deprecated,
// RFC 7208 5.5), ip4, ip6, exists; modifiers redirect (and exp, ignored); the basic macros
// (%{s} %{l} %{o} %{d} %{i} %{h} %{v}, digits and r transformers); the limits of 10 DNS-querying
// terms and 2 void lookups (4.6.4). Pure over the DNS functions given (spf_test.cpp fakes them).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "dns/lookup.h"

namespace sluice::auth {

struct SpfDns {
  std::function<dns::Answer(const std::string&)> txt, a, aaaa, mx;
};

struct SpfResult {
  std::string result;   // pass, fail, softfail, neutral, none, permerror, temperror
  std::string record;   // the domain's own SPF record ("" when none)
  std::string matched;  // the term that decided ("-all", "ip4:192.0.2.0/24", "include:x.test")
  std::string problem;  // for permerror/temperror: what is wrong
  int lookups = 0;      // DNS-querying terms counted
};

SpfResult check_host(const SpfDns& dns, const std::string& ip, const std::string& domain,
                     const std::string& sender);

// The SPF record among a name's TXT strings: "" when none; "several" when more than one.
std::string spf_record(const std::vector<std::string>& txt);

}  // namespace sluice::auth
