#include "config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <tuple>

#include "config/config_reader.h"
#include "core/cidr.h"
#include "core/text.h"

namespace sluice::config {

std::optional<std::string> parse_tls_policy(std::string_view s, TlsPolicy& out) {
  return parse_named(s, out,
                     {std::pair{std::string_view("none"), TlsPolicy::kNone},
                      {"opportunistic", TlsPolicy::kOpportunistic},
                      {"required", TlsPolicy::kRequired},
                      {"verify", TlsPolicy::kVerify}});
}

namespace {

using std::chrono::milliseconds;

std::optional<std::string> check_ip(std::string_view s) {
  unsigned char buf[16];
  const std::string text(s);
  if (s.empty() || inet_pton(AF_INET, text.c_str(), buf) == 1 ||
      inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    return std::nullopt;
  }
  return "expected an IPv4 or IPv6 address";
}

}  // namespace

void read_shaping_limits(const toml::table& t, Section& s, ShapingOverride& out) {
  auto u32 = [&](std::string_view key, std::optional<uint32_t>& field, uint32_t max) {
    uint32_t v = 0;
    s.u32(key, v, 1, max);
    if (v) field = v;
  };
  u32("connection_limit", out.connection_limit, 10'000);
  u32("max_deliveries_per_connection", out.max_deliveries_per_connection, 100'000);
  auto rate = [&](std::string_view key, std::optional<Rate>& field) {
    Rate r{UINT32_MAX, Duration(1)};
    s.parsed<Rate>(key, r, parse_rate);
    if (r.count != UINT32_MAX) field = r;
  };
  rate("max_message_rate", out.max_message_rate);
  rate("max_connection_rate", out.max_connection_rate);
  Duration idle{-1};
  s.duration("idle_timeout", idle, milliseconds(0), milliseconds(3'600'000));
  if (idle.count() >= 0) out.idle_timeout = idle;
  if (t.get("adaptive")) {
    bool adaptive = true;
    s.boolean("adaptive", adaptive);
    out.adaptive = adaptive;
  }
  s.finish();
}

namespace {

void read_shaping_section(const toml::table& root, const std::string& file, ShapingConfig& sc,
                          std::vector<ConfigError>& errors) {
  const toml::node* n = root.get("shaping");
  if (!n) return;
  if (!n->is_table()) {
    errors.push_back({file, n->source().begin.line, n->source().begin.column, "shaping",
                      "expected a table [shaping]"});
    return;
  }
  const toml::table& t = *n->as_table();
  Section s(&t, "shaping", file, &errors);
  ShapingTuning& tu = sc.tuning;
  s.u32("initial_connections", tu.initial_connections, 1, 10'000);
  s.duration("hold", tu.hold, milliseconds(0), milliseconds(3'600'000));
  s.duration("max_hold", tu.max_hold, milliseconds(0), milliseconds(86'400'000));
  s.duration("probe_interval", tu.probe_interval, milliseconds(100), milliseconds(86'400'000));
  s.duration("max_probe_interval", tu.max_probe_interval, milliseconds(100),
             milliseconds(604'800'000));
  s.duration("suspend", tu.suspend, milliseconds(1000), milliseconds(604'800'000));
  s.duration("max_suspend", tu.max_suspend, milliseconds(1000), milliseconds(604'800'000));
  s.duration("decay", tu.decay, milliseconds(1000), milliseconds(604'800'000));
  s.duration("greylist_retry", tu.greylist_retry, milliseconds(1000), milliseconds(86'400'000));
  s.duration("forget_after", tu.forget_after, milliseconds(1000), milliseconds(604'800'000));
  s.duration("dead_probe", tu.dead_probe, milliseconds(100), milliseconds(3'600'000));
  s.duration("max_dead_probe", tu.max_dead_probe, milliseconds(100), milliseconds(86'400'000));
  for (const char* k : {"default", "provider", "site", "domain"}) s.known(k);
  s.finish();

  if (const toml::node* d = t.get("default")) {
    if (!d->is_table()) {
      errors.push_back({file, d->source().begin.line, d->source().begin.column, "shaping.default",
                        "expected a table [shaping.default]"});
    } else {
      Section ds(d->as_table(), "shaping.default", file, &errors);
      ShapingOverride o;
      read_shaping_limits(*d->as_table(), ds, o);
      o.apply_to(sc.defaults);
    }
  }
  auto overrides = [&](const char* kind, std::map<std::string, ShapingOverride>& out) {
    const toml::node* list = t.get(kind);
    if (!list) return;
    const std::string prefix = std::string("shaping.") + kind;
    if (!list->is_table()) {
      errors.push_back({file, list->source().begin.line, list->source().begin.column, prefix,
                        "expected tables [" + prefix + ".\"name\"]"});
      return;
    }
    for (const auto& [name, node] : *list->as_table()) {
      const std::string key = prefix + "." + std::string(name.str());
      if (!node.is_table()) {
        errors.push_back(
            {file, node.source().begin.line, node.source().begin.column, key, "expected a table"});
        continue;
      }
      Section os(node.as_table(), key, file, &errors);
      read_shaping_limits(*node.as_table(), os, out[to_lower(name.str())]);
    }
  };
  overrides("provider", sc.providers);
  overrides("site", sc.sites);
  overrides("domain", sc.domains);
}

template <class SectionFn>
void read_delivery_sections(const toml::table& root, const std::string& file, Config& c,
                            std::vector<ConfigError>& errors, SectionFn section) {
  Section queue = section("queue");
  queue.duration("min_backoff", c.queue.min_backoff, milliseconds(100), milliseconds(86'400'000));
  queue.duration("max_backoff", c.queue.max_backoff, milliseconds(100), milliseconds(604'800'000));
  queue.duration("max_age", c.queue.max_age, milliseconds(1000), milliseconds(2'592'000'000));
  queue.boolean("hold", c.queue.hold);
  queue.u32("max_in_flight", c.queue.max_in_flight, 4, 10'000'000);
  if (c.queue.max_backoff < c.queue.min_backoff)
    queue.fail("max_backoff", "must not be below min_backoff");
  queue.finish();

  Section d = section("delivery");
  DeliveryConfig& dc = c.delivery;
  d.parsed<std::string>("source_ip", dc.source_ip, [](std::string_view s, std::string& out) {
    if (auto e = check_ip(s)) return e;
    out = std::string(s);
    return std::optional<std::string>();
  });
  d.string("helo_name", dc.helo_name, /*allow_empty=*/true);
  d.parsed<TlsPolicy>("tls", dc.tls, parse_tls_policy);
  d.string("tls_ca_file", dc.tls_ca_file, /*allow_empty=*/true);
  uint32_t port = dc.port;
  d.u32("port", port, 1, 65535);
  dc.port = static_cast<uint16_t>(port);
  for (const char* moved : {"max_connections_per_site", "max_deliveries_per_connection"}) {
    if (root.at_path(std::string("delivery.") + moved)) {
      d.known(moved);
      d.fail(moved, std::string("moved to [shaping.default] as ") +
                        (moved[4] == 'c' ? "connection_limit" : moved));
    }
  }
  d.u32("max_recipients_per_transaction", dc.max_recipients_per_transaction, 1, 10'000);
  d.u32("max_connections", dc.max_connections, 1, 1'000'000);
  d.size("max_bytes_in_flight", dc.max_bytes_in_flight, 1'000'000, 1'000'000'000'000);
  d.duration("connect_timeout", dc.connect_timeout, milliseconds(100), milliseconds(600'000));
  d.duration("command_timeout", dc.command_timeout, milliseconds(100), milliseconds(3'600'000));
  d.duration("data_timeout", dc.data_timeout, milliseconds(100), milliseconds(3'600'000));
  d.finish();

  Section dns = section("dns");
  dns.strings("nameservers", c.dns.nameservers,
              [](std::string_view v) -> std::optional<std::string> {
                Endpoint e;
                if (!v.empty() && (!check_ip(v) || !parse_endpoint(v, e))) return std::nullopt;
                return "expected \"address:port\" or an address";
              });
  dns.duration("timeout", c.dns.timeout, milliseconds(100), milliseconds(60'000));
  dns.string("providers", c.dns.providers, /*allow_empty=*/true);
  dns.finish();

  Section cl = section("classify");
  cl.string("rules", c.classify.rules, /*allow_empty=*/true);
  cl.finish();

  read_shaping_section(root, file, c.shaping, errors);

  const toml::node* routes = root.get("route");
  if (routes && !routes->is_table()) {
    errors.push_back({file, routes->source().begin.line, routes->source().begin.column, "route",
                      "expected tables [route.\"domain\"]"});
  } else if (routes) {
    for (const auto& [domain, node] : *routes->as_table()) {
      const std::string key = "route." + std::string(domain.str());
      if (!node.is_table()) {
        errors.push_back({file, node.source().begin.line, node.source().begin.column, key,
                          "expected a table with host and port"});
        continue;
      }
      Route r;
      Section rs(node.as_table(), key, file, &errors);
      rs.string("host", r.host);
      uint32_t port = r.port;
      rs.u32("port", port, 1, 65535);
      r.port = static_cast<uint16_t>(port);
      rs.parsed<TlsPolicy>("tls", r.tls, parse_tls_policy);
      rs.string("provider", r.provider, /*allow_empty=*/true);
      if (!node.as_table()->get("host")) rs.fail("host", "a route needs a host");
      rs.finish();
      c.routes[to_lower(domain.str())] = r;
    }
  }
}

void read_sections(const toml::table& root, const std::string& file, Config& c,
                   std::vector<ConfigError>& errors) {
  auto section = [&](std::string_view name) {
    const toml::node* n = root.get(name);
    if (n && !n->is_table()) {
      errors.push_back({file, n->source().begin.line, n->source().begin.column, std::string(name),
                        "expected a table [" + std::string(name) + "]"});
      n = nullptr;
    }
    return Section(n ? n->as_table() : nullptr, std::string(name), file, &errors);
  };

  Section server = section("server");
  server.string("hostname", c.server.hostname);
  server.u32("threads", c.server.threads, 0, 256);
  server.duration("shutdown_grace", c.server.shutdown_grace, milliseconds(0),
                  milliseconds(600'000));
  server.finish();

  Section smtp = section("smtp");
  SmtpConfig& s = c.smtp;
  smtp.parsed<Endpoint>("listen", s.listen, parse_endpoint);
  smtp.size("max_message_size", s.max_message_size, 1024, 2'000'000'000);
  smtp.u32("max_recipients", s.max_recipients, 1, 100'000);
  smtp.u32("max_connections", s.max_connections, 1, 100'000);
  smtp.u32("max_connections_per_ip", s.max_connections_per_ip, 1, 100'000);
  smtp.u32("max_errors", s.max_errors, 1, 1000);
  smtp.u32("max_received_headers", s.max_received_headers, 1, 1000);
  smtp.duration("command_timeout", s.command_timeout, milliseconds(1000), milliseconds(3'600'000));
  smtp.duration("data_timeout", s.data_timeout, milliseconds(1000), milliseconds(3'600'000));
  smtp.strings("client_networks", s.client_networks,
               [](std::string_view v) -> std::optional<std::string> {
                 if (Cidr::parse(v)) return std::nullopt;
                 return "expected an address or range such as \"127.0.0.0/8\" or \"::1/128\"";
               });
  smtp.string("tls_cert", s.tls_cert, /*allow_empty=*/true);
  smtp.string("tls_key", s.tls_key, /*allow_empty=*/true);
  smtp.string("auth_credentials", s.auth_credentials, /*allow_empty=*/true);
  smtp.u32("auth_max_failures", s.auth_max_failures, 1, 1000);
  smtp.duration("auth_failure_window", s.auth_failure_window, milliseconds(1000),
                milliseconds(86'400'000));
  smtp.known("senders");
  if (const toml::node* senders = root.at_path("smtp.senders").node()) {
    if (!senders->is_table()) {
      smtp.fail("senders", "expected a table [smtp.senders] of login = [\"a@example.org\", ...]");
    } else {
      Section ss(senders->as_table(), "smtp.senders", file, &errors);
      for (const auto& [login, _] : *senders->as_table()) {
        ss.strings(login.str(), s.senders[std::string(login.str())],
                   [](std::string_view p) -> std::optional<std::string> {
                     const size_t at = p.rfind('@');
                     if (p == "*" || (at != std::string_view::npos && at + 1 < p.size() &&
                                      p.find(' ') == std::string_view::npos))
                       return std::nullopt;
                     return "expected \"user@example.org\", \"@example.org\" or \"*\"";
                   });
      }
      ss.finish();
    }
  }
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    smtp.fail(s.tls_cert.empty() ? "tls_key" : "tls_cert", "tls_cert and tls_key go together");
  }
  if (!s.auth_credentials.empty() && s.tls_cert.empty()) {
    smtp.fail("auth_credentials", "AUTH is offered only under TLS: set tls_cert and tls_key too");
  }
  smtp.finish();

  Section http = section("http");
  http.parsed<Endpoint>("listen", c.http.listen, parse_endpoint);
  http.string("api_token", c.http.api_token, /*allow_empty=*/true);
  http.finish();

  Section spool = section("spool");
  spool.string("path", c.spool.path);
  spool.size("min_free_space", c.spool.min_free_space, 0, 1'000'000'000'000);
  spool.finish();

  Section log = section("log");
  log.string("path", c.log.path);
  log.finish();

  read_delivery_sections(root, file, c, errors, section);
  read_egress_sections(root, file, c, errors);
  read_dkim_sections(root, file, c, errors);
  read_tls_section(root, file, c.tls, errors);

  static constexpr std::string_view kSections[] = {"server", "smtp",    "http",     "spool",
                                                   "log",    "queue",   "delivery", "dns",
                                                   "route",  "shaping", "classify", "source",
                                                   "pool",   "tenant",  "egress",   "campaign",
                                                   "warmup", "dkim",    "tls"};
  for (const auto& [k, v] : root) {
    bool known = false;
    for (auto s : kSections) known = known || k.str() == s;
    if (!known) {
      errors.push_back({file, v.source().begin.line, v.source().begin.column, std::string(k.str()),
                        "unknown section or key"});
    }
  }
}

}  // namespace

std::optional<std::string> parse_endpoint(std::string_view s, Endpoint& out) {
  // host:port, [v6]:port
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return "expected \"[IPv6]:port\"";
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, std::string(host).c_str(), buf) != 1) return "invalid IPv6 address";
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return "expected \"address:port\"";
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    unsigned char buf[4];
    if (host != "localhost" && inet_pton(AF_INET, std::string(host).c_str(), buf) != 1) {
      return "expected an IPv4 address, [IPv6] or localhost before the port";
    }
  }
  auto p = parse_u64(port);
  if (!p || *p == 0 || *p > 65535) return "port must be 1..65535";
  out = Endpoint{std::string(host), static_cast<uint16_t>(*p)};
  return std::nullopt;
}

void ShapingOverride::apply_to(ShapingLimits& l) const {
  if (connection_limit) l.connection_limit = *connection_limit;
  if (max_deliveries_per_connection)
    l.max_deliveries_per_connection = *max_deliveries_per_connection;
  if (max_message_rate) l.max_message_rate = *max_message_rate;
  if (max_connection_rate) l.max_connection_rate = *max_connection_rate;
  if (idle_timeout) l.idle_timeout = *idle_timeout;
  if (adaptive) l.adaptive = *adaptive;
}

ShapingLimits ShapingConfig::limits_for(std::string_view provider, std::string_view site,
                                        std::string_view domain) const {
  ShapingLimits l = defaults;
  auto apply = [&](const std::map<std::string, ShapingOverride>& m, std::string_view name) {
    if (name.empty()) return;
    if (auto it = m.find(std::string(name)); it != m.end()) it->second.apply_to(l);
  };
  apply(providers, provider);
  // A site of a domain's own TLS policy ("mx1.example [mta-sts]", src/tlspolicy/) is shaped as
  // its MX hosts.
  apply(sites, site.substr(0, site.find(" [")));
  apply(domains, domain);
  return l;
}

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string ConfigError::str() const {
  // Appends piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string
  // temporaries.
  std::string out = file;
  if (line) {
    out.append(":").append(std::to_string(line));
    out.append(":").append(std::to_string(column));
  }
  out.append(": ");
  if (!key.empty()) out.append(key).append(": ");
  return out.append(message);
}

ConfigResult load_config_text(std::string_view text, const std::string& name) {
  std::vector<ConfigError> errors;
  auto parsed = parse_toml(text, name, errors);
  if (!parsed) return Unexpected<std::vector<ConfigError>>{std::move(errors)};
  const toml::table& root = *parsed;
  Config c;
  c.source = name;
  read_sections(root, name, c, errors);
  // In file order, as an editor would walk them.
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  if (!errors.empty()) return Unexpected<std::vector<ConfigError>>{std::move(errors)};
  return c;
}

ConfigResult load_config_file(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) {
    return Unexpected<std::vector<ConfigError>>{
        {ConfigError{path, 0, 0, "", "cannot open the configuration file"}}};
  }
  return load_config_text(*text, path);
}

std::vector<std::string> changed_sections(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto check = [&](const char* name, bool same) {
    if (!same) out.emplace_back(name);
  };
  check("server", a.server == b.server);
  check("smtp", a.smtp == b.smtp);
  check("http", a.http == b.http);
  check("spool", a.spool == b.spool);
  check("log", a.log == b.log);
  check("queue", a.queue == b.queue);
  check("delivery", a.delivery == b.delivery);
  check("shaping", a.shaping == b.shaping);
  check("classify", a.classify == b.classify);
  check("dns", a.dns == b.dns);
  check("route", a.routes == b.routes);
  check("egress", a.egress == b.egress);
  check("dkim", a.dkim == b.dkim);
  check("tls", a.tls == b.tls);
  return out;
}

}  // namespace sluice::config
