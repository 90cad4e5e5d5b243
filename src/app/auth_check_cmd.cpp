#include "app/auth_check_cmd.h"

#include <cstdio>

#include "auth/auth_check.h"
#include "config/config.h"
#include "core/json.h"
#include "core/text.h"

namespace sluice {

int auth_check(const AuthCheckOptions& o) {
  auto cfg = config::load_config_file(o.config_path);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::fprintf(stderr, "sluice: %s\n", e.str().c_str());
    return 78;
  }
  auto dns = dns::Lookup::create(cfg->dns.nameservers, cfg->dns.timeout);
  if (!dns) {
    std::fprintf(stderr, "sluice auth-check: %s\n", dns.error().message.c_str());
    return 69;
  }
  const auto findings = auth::auth_check(*cfg, o.domain, **dns);
  size_t problems = 0, warnings = 0;
  for (const auto& f : findings) {
    problems += f.status == "problem";
    warnings += f.status == "warning";
  }
  if (o.json) {
    std::string list = "[";
    for (const auto& f : findings) {
      if (list.size() > 1) list += ",";
      std::string line = JsonLine()
                             .str("check", f.check)
                             .str("subject", f.subject)
                             .str("status", f.status)
                             .str("message", f.message)
                             .str("fix", f.fix)
                             .object();
      list += line;
    }
    std::string doc = JsonLine()
                          .str("domain", to_lower(o.domain))
                          .unum("problems", problems)
                          .unum("warnings", warnings)
                          .raw("findings", list + "]")
                          .finish();
    std::fputs(doc.c_str(), stdout);
  } else {
    std::printf("auth-check %s (%s)\n", to_lower(o.domain).c_str(), o.config_path.c_str());
    for (const auto& f : findings) {
      const char* mark = f.status == "ok" ? "ok     " : f.status == "warning" ? "warning" : "PROBLEM";
      std::printf("  %s %-7s %-36s %s\n", mark, f.check.c_str(), f.subject.c_str(), f.message.c_str());
      if (!f.fix.empty()) std::printf("  %7s %-7s %-36s fix: %s\n", "", "", "", f.fix.c_str());
    }
    std::printf("%zu problem(s), %zu warning(s)\n", problems, warnings);
  }
  return problems ? 1 : 0;
}

}  // namespace sluice
