// [source.NAME], [pool.NAME], [tenant.NAME] and [egress]: where mail leaves from.
#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "config/config_reader.h"

namespace sluice::embedded {
// etc/warmup.toml, compiled in (cmake/EmbedText.cmake).
std::string_view warmup_schedules();
}  // namespace sluice::embedded

namespace sluice::config {
namespace {

// A list of caps: whole numbers >= 1.
void read_caps_list(const toml::table& t, const char* key, const std::string& prefix,
                    const std::string& file, std::vector<uint64_t>& out,
                    std::vector<ConfigError>& errors) {
  const toml::node* n = t.get(key);
  if (!n) return;
  auto fail = [&](const toml::node& at, std::string message) {
    errors.push_back({file, at.source().begin.line, at.source().begin.column,
                      prefix + "." + key, std::move(message)});
  };
  const toml::array* list = n->as_array();
  if (!list || list->empty()) return fail(*n, "expected a list of caps, one per day: [50, 100, …]");
  for (const auto& e : *list) {
    const auto v = e.value<int64_t>();
    if (!v || *v < 1) return fail(e, "each cap must be a whole number of messages, 1 or more");
    out.push_back(static_cast<uint64_t>(*v));
  }
}

void read_caps(const toml::table& t, const toml::node& at, const std::string& prefix,
               const std::string& file, WarmupCaps& caps, std::vector<ConfigError>& errors) {
  Section sec(&t, prefix, file, &errors);
  sec.known("daily");
  sec.known("hourly");
  sec.known("provider");
  read_caps_list(t, "daily", prefix, file, caps.daily, errors);
  read_caps_list(t, "hourly", prefix, file, caps.hourly, errors);
  if (!t.get("daily")) {
    errors.push_back({file, at.source().begin.line, at.source().begin.column, prefix + ".daily",
                      "a warm-up schedule needs daily caps"});
  }
  sec.finish();
}

// [warmup.NAME] tables of `root` into `out`.
void read_warmups(const toml::table& root, const std::string& file,
                  std::map<std::string, WarmupSchedule>& out, std::vector<ConfigError>& errors);

// "2026-11-30" -> Unix ms of that UTC day's start.
std::optional<int64_t> parse_day(std::string_view s) {
  int y = 0, m = 0, d = 0;
  if (s.size() != 10 || std::sscanf(std::string(s).c_str(), "%4d-%2d-%2d", &y, &m, &d) != 3 ||
      m < 1 || m > 12 || d < 1 || d > 31 || y < 2000)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = m - 1;
  tm.tm_mday = d;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::optional<std::string> check_address(std::string_view s) {
  unsigned char buf[16];
  const std::string a(s);
  if (inet_pton(AF_INET, a.c_str(), buf) == 1 || inet_pton(AF_INET6, a.c_str(), buf) == 1)
    return std::nullopt;
  return "expected an IPv4 or IPv6 address of this machine, such as \"127.0.0.2\"";
}

void read_pool_sources(const toml::node& n, const std::string& key, const std::string& file,
                       EgressPool& pool, std::vector<ConfigError>& errors) {
  auto fail = [&](const toml::node& at, std::string message) {
    errors.push_back({file, at.source().begin.line, at.source().begin.column, key + ".sources",
                      std::move(message)});
  };
  if (const toml::array* list = n.as_array()) {  // ["ip1", "ip2"]: weight 1 each
    for (const auto& e : *list) {
      if (!e.is_string()) return fail(e, "expected source names, or { NAME = WEIGHT, ... }");
      pool.sources.emplace_back(e.as_string()->get(), 1);
    }
    return;
  }
  const toml::table* t = n.as_table();
  if (!t) return fail(n, "expected { NAME = WEIGHT, ... } or [\"NAME\", ...]");
  for (const auto& [name, w] : *t) {
    const auto weight = w.value<int64_t>();
    if (!weight || *weight < 1 || *weight > 1000) {
      fail(w, "the weight of " + std::string(name.str()) + " must be a whole number 1..1000");
      continue;
    }
    pool.sources.emplace_back(std::string(name.str()), static_cast<uint32_t>(*weight));
  }
}

}  // namespace

namespace {

void read_warmups(const toml::table& root, const std::string& file,
                  std::map<std::string, WarmupSchedule>& out, std::vector<ConfigError>& errors) {
  each_table(root, "warmup", file, errors,
             [&](const std::string& name, const std::string& key, const toml::table& t,
                 const toml::node& node) {
               WarmupSchedule w;
               w.name = name;
               read_caps(t, node, key, file, w.caps, errors);
               if (const toml::node* p = t.get("provider")) {
                 if (!p->is_table()) {
                   errors.push_back({file, p->source().begin.line, p->source().begin.column,
                                     key + ".provider", "expected tables [" + key + ".provider.X]"});
                 } else {
                   for (const auto& [prov, pnode] : *p->as_table()) {
                     const std::string pkey = key + ".provider." + std::string(prov.str());
                     if (!pnode.is_table()) {
                       errors.push_back({file, pnode.source().begin.line,
                                         pnode.source().begin.column, pkey, "expected a table"});
                       continue;
                     }
                     read_caps(*pnode.as_table(), pnode, pkey, file,
                               w.providers[std::string(prov.str())], errors);
                   }
                 }
               }
               out[name] = std::move(w);
             });
}

}  // namespace

std::map<std::string, WarmupSchedule> builtin_warmups() {
  std::vector<ConfigError> errors;
  std::map<std::string, WarmupSchedule> out;
  auto root = parse_toml(embedded::warmup_schedules(), "etc/warmup.toml (built in)", errors);
  if (root) read_warmups(*root, "etc/warmup.toml (built in)", out, errors);
  if (!errors.empty()) {
    // The shipped file is checked by its unit test; a broken build must not start quietly.
    std::fprintf(stderr, "sluice: %s\n", errors.front().str().c_str());
    std::abort();
  }
  return out;
}

void read_egress_sections(const toml::table& root, const std::string& file, Config& c,
                          std::vector<ConfigError>& errors) {
  EgressConfig& e = c.egress;
  e.warmups = builtin_warmups();
  read_warmups(root, file, e.warmups, errors);
  each_table(root, "source", file, errors,
             [&](const std::string& name, const std::string& key, const toml::table& t,
                 const toml::node&) {
               EgressSource s;
               s.name = name;
               Section sec(&t, key, file, &errors);
               sec.parsed<std::string>("address", s.address,
                                       [](std::string_view v, std::string& out) {
                                         if (auto err = check_address(v)) return err;
                                         out = std::string(v);
                                         return std::optional<std::string>();
                                       });
               if (!t.get("address")) sec.fail("address", "a source needs an address");
               sec.string("ehlo", s.ehlo, /*allow_empty=*/true);
               sec.string("warmup", s.warmup, /*allow_empty=*/true);
               if (s.warmup == "none") s.warmup.clear();
               if (!s.warmup.empty() && !e.warmups.count(s.warmup))
                 sec.fail("warmup", "no warm-up schedule \"" + s.warmup +
                                        "\" (built in: etc/warmup.toml; or [warmup." +
                                        s.warmup + "] here)");
               sec.parsed<int64_t>("warmup_start", s.warmup_start_ms,
                                   [](std::string_view v, int64_t& out) {
                                     auto day = parse_day(v);
                                     if (!day)
                                       return std::optional<std::string>(
                                           "expected a day such as \"2026-11-30\"");
                                     out = *day;
                                     return std::optional<std::string>();
                                   });
               read_shaping_limits(t, sec, s.limits);  // the source's own limits
               sec.finish();
               e.sources[name] = std::move(s);
             });
  each_table(root, "pool", file, errors,
             [&](const std::string& name, const std::string& key, const toml::table& t,
                 const toml::node& node) {
               EgressPool p;
               p.name = name;
               Section sec(&t, key, file, &errors);
               sec.known("sources");
               if (const toml::node* list = t.get("sources"))
                 read_pool_sources(*list, key, file, p, errors);
               if (p.sources.empty()) {
                 errors.push_back({file, node.source().begin.line, node.source().begin.column,
                                   key + ".sources", "a pool needs at least one source"});
               }
               for (const auto& [src, _] : p.sources) {
                 if (!e.sources.count(src))
                   sec.fail("sources", "no [source." + src + "] is configured");
               }
               sec.finish();
               e.pools[name] = std::move(p);
             });
  each_table(root, "tenant", file, errors,
             [&](const std::string& name, const std::string& key, const toml::table& t,
                 const toml::node&) {
               Tenant tn;
               tn.name = name;
               Section sec(&t, key, file, &errors);
               sec.string("pool", tn.pool);
               sec.boolean("priority", tn.priority);
               sec.strings("users", tn.users, [](std::string_view) { return std::nullopt; });
               sec.finish();
               e.tenants[name] = std::move(tn);
             });
  each_table(root, "campaign", file, errors,
             [&](const std::string& name, const std::string& key, const toml::table& t,
                 const toml::node&) {
               Campaign cp;
               cp.name = name;
               Section sec(&t, key, file, &errors);
               sec.duration("window", cp.window, std::chrono::milliseconds(1000),
                            std::chrono::milliseconds(30LL * 86'400'000));
               sec.parsed<Rate>("rate", cp.rate, parse_rate);
               if (t.get("window") && t.get("rate"))
                 sec.fail("rate", "a campaign has a window or a rate, not both");
               else if (!t.get("window") && !t.get("rate"))
                 sec.fail("window", "a campaign needs a window (\"1h\") or a rate (\"1000/h\")");
               sec.finish();
               e.campaigns[name] = std::move(cp);
             });
  Section eg(root.get("egress") ? root.get("egress")->as_table() : nullptr, "egress", file,
             &errors);
  eg.string("tenant_header", e.tenant_header, /*allow_empty=*/true);
  eg.string("campaign_header", e.campaign_header, /*allow_empty=*/true);
  eg.finish();

  const toml::node* delivery_ip = root.at_path("delivery.source_ip").node();
  if (e.sources.empty()) {
    // The configuration before pools: one implicit source and pool, both "default".
    e.sources["default"] = EgressSource{"default", c.delivery.source_ip, c.delivery.helo_name, "", 0, {}};
  } else if (delivery_ip) {
    errors.push_back({file, delivery_ip->source().begin.line, delivery_ip->source().begin.column,
                      "delivery.source_ip",
                      "[source.NAME] tables are configured: give this address a [source.NAME] "
                      "of its own (address = ...) instead"});
  }
  if (!e.pools.count("default")) {
    EgressPool all{"default", {}};
    for (const auto& [name, _] : e.sources) all.sources.emplace_back(name, 1);
    e.pools["default"] = std::move(all);
  }
  for (const auto& [name, t] : e.tenants) {
    if (!e.pools.count(t.pool)) {
      const toml::node* at = root.at_path("tenant." + name + ".pool").node();
      errors.push_back({file, at ? at->source().begin.line : 0, at ? at->source().begin.column : 0,
                        "tenant." + name + ".pool", "no [pool." + t.pool + "] is configured"});
    }
  }
  // Receivers count connections per address: two sources on one address would each be allowed
  // the receiver's whole limit.
  std::map<std::string, std::string> by_address;
  for (const auto& [name, s] : e.sources) {
    auto [it, fresh] = by_address.emplace(s.address, name);
    if (!fresh) {
      const toml::node* at = root.at_path("source." + name + ".address").node();
      errors.push_back({file, at ? at->source().begin.line : 0, at ? at->source().begin.column : 0,
                        "source." + name + ".address",
                        "source " + it->second + " has this address already"});
    }
  }
}

std::string EgressConfig::tenant_of_user(std::string_view login) const {
  if (login.empty()) return {};
  for (const auto& [name, t] : tenants) {
    if (name == login || std::find(t.users.begin(), t.users.end(), login) != t.users.end())
      return name;
  }
  return {};
}

}  // namespace sluice::config
