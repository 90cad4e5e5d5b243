#include "tlspolicy/policy_resolver.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/json.h"
#include "core/text.h"
#include "dns/lookup.h"
#include "observe/event_log.h"
#include "spool/spool.h"
#include "tlspolicy/fetch.h"
#include "tlspolicy/mta_sts.h"

namespace sluice::tlspolicy {

namespace {

constexpr int kWorkers = 2;
// TLSA records are looked at again this often: keys roll over on the receiver's schedule.
constexpr int64_t kDaneRecheckMs = 300'000;

constexpr std::string_view kStatePrefix = "mta-sts/";

struct StsCached {
  std::optional<StsPolicy> policy;
  std::string id;
  int64_t expires_ms = 0;
  std::string text;  // the policy file as fetched (what is kept in the spool)
};

struct DomainState {
  StsCached sts;
  // The last fetch failed for this id: not tried again before failed_ms + mta_sts_retry.
  std::string failed_id;
  int64_t failed_ms = 0;
  std::optional<int64_t> dane_checked_ms;
  bool mx_secure = false;
};

struct HostTlsa {
  std::vector<dns::Tlsa> tlsa;
  int64_t checked_ms = 0;
  // The lookup failed (SERVFAIL: a bogus signature, an unreachable server) under a validated
  // MX: the host is not used rather than used without DANE (RFC 7672 section 2.2).
  std::string failed;
};

// A domain whose TLS policy leaves no host to deliver to: deferred, read as category tls.
dns::ResolveResult policy_failure(const std::string& text) {
  return Unexpected<dns::ResolveError>{
      dns::ResolveError{false, smtp::Reply::make(451, "4.7.5", text)}};
}

std::string tlsa_name(const dns::Host& h) {
  return "_" + std::to_string(h.port) + "._tcp." + h.name;
}

}  // namespace

struct PolicyResolver::Impl {
  dns::Resolver& inner;
  PolicyOptions options;

  mutable std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  std::unordered_map<std::string, DomainState> domains;
  std::unordered_map<std::string, HostTlsa> hosts;  // by TLSA name
  // Domains being looked up: the callers waiting, each with its inner answer.
  std::map<std::string, std::vector<std::pair<dns::Destination, Done>>> waiting;
  std::deque<std::string> queue;
  std::vector<std::thread> workers;

  Impl(dns::Resolver& r, PolicyOptions o) : inner(r), options(std::move(o)) {
    if (!options.now_ms) {
      options.now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
      };
    }
    if (!options.wall_ms) {
      options.wall_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
    }
    load();
  }

  // Kept policies: "ID\nEXPIRES (Unix ms)\nPOLICY TEXT". Expired or unreadable ones are skipped
  // (and overwritten by the next fetch).
  void load() {
    if (!options.state || !options.tls.mta_sts) return;
    auto kept = options.state->read_state(std::string(kStatePrefix));
    if (!kept.ok()) return;
    const int64_t now = options.now_ms(), wall = options.wall_ms();
    for (const auto& [key, value] : *kept) {
      const size_t a = value.find('\n');
      const size_t b = a == std::string::npos ? a : value.find('\n', a + 1);
      if (b == std::string::npos) continue;
      int64_t expires = 0;
      try {
        expires = std::stoll(value.substr(a + 1, b - a - 1));
      } catch (const std::exception&) {
        continue;
      }
      if (expires <= wall) continue;
      StsParse p = parse_sts_policy(std::string_view(value).substr(b + 1));
      if (!p.policy) continue;
      DomainState& s = domains[key.substr(kStatePrefix.size())];
      s.sts = StsCached{p.policy, value.substr(0, a), now + (expires - wall), value.substr(b + 1)};
    }
  }

  void keep(const std::string& domain, const StsCached& c, int64_t now) {
    if (!options.state) return;
    const int64_t expires_wall = options.wall_ms() + (c.expires_ms - now);
    std::string value = c.id;
    value += '\n';
    value += std::to_string(expires_wall);
    value += '\n';
    value += c.text;
    (void)options.state->put_state(std::string(kStatePrefix) + domain, value);
  }

  void start() {
    if (!options.tls.mta_sts && !options.tls.dane) return;
    for (int i = 0; i < kWorkers; ++i) workers.emplace_back([this] { work(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake.notify_all();
    for (auto& t : workers) t.join();
  }

  // The id the domain's _mta-sts TXT records announce: exactly one v=STSv1 record, valid
  // (section 3.1); nullopt otherwise.
  static std::optional<std::string> sts_id(const dns::Destination& d) {
    std::optional<std::string> id;
    int records = 0;
    for (const std::string& v : d.sts_records) {
      if (!v.starts_with("v=STSv1")) continue;
      ++records;
      id = parse_sts_txt(v);
    }
    return records == 1 ? id : std::nullopt;
  }

  // Whether a policy must be fetched for `domain` announcing `id` (under mu): none cached with
  // this id, and no fetch of it failed lately.
  bool needs_fetch(const std::string& domain, const std::optional<std::string>& id,
                   int64_t now) const {
    if (!options.tls.mta_sts || !id) return false;
    auto it = domains.find(domain);
    if (it == domains.end()) return true;
    const DomainState& s = it->second;
    if (s.sts.policy && s.sts.expires_ms > now && s.sts.id == *id) return false;
    return !(s.failed_id == *id && now - s.failed_ms < options.tls.mta_sts_retry.count());
  }

  // Whether DANE's lookups for `domain` and `d`'s hosts are due (under mu).
  bool needs_dane(const std::string& domain, const dns::Destination& d, int64_t now) const {
    if (!options.tls.dane) return false;
    auto it = domains.find(domain);
    if (it == domains.end()) return true;
    const DomainState& s = it->second;
    if (!s.dane_checked_ms || now - *s.dane_checked_ms >= kDaneRecheckMs) return true;
    if (s.mx_secure) {
      for (const dns::Host& h : d.hosts) {
        auto hit = hosts.find(tlsa_name(h));
        if (hit == hosts.end() || now - hit->second.checked_ms >= kDaneRecheckMs) return true;
      }
    }
    return false;
  }

  void on_inner(const std::string& domain, dns::ResolveResult r, Done done) {
    if (!r.ok() || r->site.starts_with("route:") || r->site.starts_with("[")) {
      return done(std::move(r));
    }
    const int64_t now = options.now_ms();
    {
      std::unique_lock lock(mu);
      if (needs_fetch(domain, sts_id(*r), now) || needs_dane(domain, *r, now)) {
        auto [it, first] = waiting.try_emplace(domain);
        it->second.emplace_back(std::move(*r), std::move(done));
        if (first) {
          queue.push_back(domain);
          wake.notify_one();
        }
        return;
      }
    }
    done(apply(domain, std::move(*r), now));
  }

  void work() {
    std::unique_ptr<dns::Lookup> lookup;
    if (auto l = dns::Lookup::create(options.nameservers, options.dns_timeout); l.ok())
      lookup = std::move(*l);
    for (;;) {
      std::string domain;
      dns::Destination sample;
      {
        std::unique_lock lock(mu);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        domain = std::move(queue.front());
        queue.pop_front();
        sample = waiting[domain].front().first;
      }
      bool fetch = false, dane = false;
      const std::optional<std::string> id = sts_id(sample);
      {
        std::lock_guard lock(mu);
        const int64_t now = options.now_ms();
        fetch = needs_fetch(domain, id, now);
        dane = needs_dane(domain, sample, now);
      }
      if (lookup && fetch) fetch_sts(*lookup, domain, *id);
      if (lookup && dane) refresh_dane(*lookup, domain, sample);
      std::vector<std::pair<dns::Destination, Done>> ready;
      {
        std::lock_guard lock(mu);
        ready = std::move(waiting[domain]);
        waiting.erase(domain);
      }
      const int64_t now = options.now_ms();
      for (auto& [d, done] : ready) done(apply(domain, std::move(d), now));
    }
  }

  void log(JsonLine& line) {
    if (options.log) options.log->write(line.finish());
  }

  // Fetches the policy `id` announces. On failure a cached policy stays in force until it
  // expires (section 5.1); without one the domain has none. Either way the line says so.
  void fetch_sts(dns::Lookup& lookup, const std::string& domain, const std::string& id) {
    std::vector<std::string> addresses = lookup.a("mta-sts." + domain).values;
    for (auto& a : lookup.aaaa("mta-sts." + domain).values) addresses.push_back(std::move(a));
    Fetched f;
    if (!options.https) {
      f.error = "no trusted CAs to verify the policy host";
    } else {
      f = fetch_policy(domain, addresses, options.tls.mta_sts_port, *options.https,
                       options.tls.mta_sts_timeout);
    }
    const int64_t now = options.now_ms();
    JsonLine line;
    line.timestamp().str("event", "MtaStsPolicy").str("domain", domain).str("id", id);
    std::string error = f.error;
    std::optional<StsCached> fetched;
    if (f.ok) {
      StsParse p = parse_sts_policy(f.body);
      if (p.policy) {
        fetched = StsCached{p.policy, id, now + int64_t{p.policy->max_age} * 1000, f.body};
        std::string mx;
        for (const auto& m : p.policy->mx) mx += (mx.empty() ? "" : " ") + m;
        line.str("result", "fetched")
            .str("mode", mode_name(p.policy->mode))
            .str("mx", mx)
            .unum("max_age", p.policy->max_age);
      } else {
        error = "the policy is not valid: " + p.error;
      }
    }
    {
      std::lock_guard lock(mu);
      DomainState& s = domains[domain];
      if (fetched) {
        s.sts = *fetched;
        s.failed_id.clear();
      } else {
        const bool cached = s.sts.policy && s.sts.expires_ms > now;
        line.str("result", cached ? "cached" : "none").str("why", error);
        s.failed_id = id;
        s.failed_ms = now;
      }
    }
    if (fetched) keep(domain, *fetched, now);
    log(line);
  }

  void refresh_dane(dns::Lookup& lookup, const std::string& domain, const dns::Destination& d) {
    const dns::Answer mx = lookup.mx_dnssec(domain);
    const bool secure = mx.ok() && mx.authenticated;
    std::vector<std::pair<std::string, HostTlsa>> found;
    const int64_t now = options.now_ms();
    std::string summary;
    if (secure) {
      for (const dns::Host& h : d.hosts) {
        const std::string name = tlsa_name(h);
        const dns::Answer t = lookup.tlsa(name);
        HostTlsa ht;
        ht.checked_ms = now;
        // Only validated records count (RFC 7672 section 2.2): others are as if absent.
        if (t.ok() && t.authenticated) ht.tlsa = t.tlsa;
        if (!t.ok() && !t.missing()) ht.failed = t.error.empty() ? "failed" : t.error;
        summary += (summary.empty() ? "" : " ") + h.name + "=" +
                   (ht.tlsa.empty() ? (t.ok() ? "insecure" : t.error.empty() ? "none" : t.error)
                                    : std::to_string(ht.tlsa.size()));
        found.emplace_back(name, std::move(ht));
      }
    }
    bool was_secure = false;
    {
      std::lock_guard lock(mu);
      DomainState& s = domains[domain];
      was_secure = s.mx_secure;
      s.mx_secure = secure;
      s.dane_checked_ms = now;
      for (auto& [name, ht] : found) hosts[name] = std::move(ht);
    }
    if (secure || was_secure) {
      JsonLine line;
      line.timestamp()
          .str("event", "DanePolicy")
          .str("domain", domain)
          .boolean("mx_secure", secure)
          .str("tlsa", summary);
      log(line);
    }
  }

  dns::ResolveResult apply(const std::string& domain, dns::Destination d, int64_t now) {
    const auto& tls = options.tls;
    if (auto p = tls.providers.find(d.provider); p != tls.providers.end() && !d.provider.empty()) {
      d.tls = p->second;
      d.tls_by = "provider";
    }
    bool by_operator = false;
    if (auto p = tls.domains.find(domain); p != tls.domains.end()) {
      d.tls = p->second;
      d.tls_by = "domain";
      by_operator = true;
    }
    std::lock_guard lock(mu);
    auto st = domains.find(domain);
    if (!by_operator && st != domains.end()) {
      const DomainState& s = st->second;
      bool dane = false;
      if (tls.dane && s.mx_secure) {
        std::vector<dns::Host> usable;
        std::string failures;
        for (dns::Host& h : d.hosts) {
          auto hit = hosts.find(tlsa_name(h));
          if (hit != hosts.end() && !hit->second.failed.empty()) {
            failures += (failures.empty() ? "" : "; ") + tlsa_name(h) + ": " + hit->second.failed;
            dane = true;
            continue;
          }
          if (hit != hosts.end()) h.tlsa = hit->second.tlsa;
          dane = dane || !h.tlsa.empty();
          usable.push_back(std::move(h));
        }
        if (usable.empty()) {
          return policy_failure("TLSA lookup failed for every MX host of " + domain + " (" +
                                failures + "): not delivered without DANE (TLS policy failure)");
        }
        d.hosts = std::move(usable);
      }
      if (dane) {
        d.tls_by = "dane";  // RFC 8461 section 2: DANE first, MTA-STS not applied
      } else if (tls.mta_sts && s.sts.policy && s.sts.expires_ms > now) {
        const StsPolicy& p = *s.sts.policy;
        if (p.mode == StsPolicy::Mode::kEnforce) {
          std::vector<dns::Host> listed;
          for (dns::Host& h : d.hosts) {
            if (mx_allowed(p, h.name)) listed.push_back(std::move(h));
          }
          if (listed.empty()) {
            std::string mx;
            for (const auto& m : p.mx) mx += (mx.empty() ? "" : ", ") + m;
            return policy_failure("no MX host of " + domain +
                                  " is listed in its MTA-STS policy (mx: " + mx +
                                  "; mode enforce): TLS policy failure");
          }
          d.hosts = std::move(listed);
          d.tls = config::TlsPolicy::kVerify;
          d.tls_by = "mta-sts";
        } else if (p.mode == StsPolicy::Mode::kTesting) {
          d.tls_testing = true;
          d.tls_by = "mta-sts testing";
        }
      }
    }
    if (d.tls_by == "domain" || d.tls_by == "dane" || d.tls_by.starts_with("mta-sts")) {
      std::vector<std::string> names;
      for (const dns::Host& h : d.hosts) names.push_back(h.name);
      d.site = dns::site_of(std::move(names)) + " [" + d.tls_by + "]";
    }
    return d;
  }
};

PolicyResolver::PolicyResolver(dns::Resolver& inner, PolicyOptions options)
    : impl_(std::make_unique<Impl>(inner, std::move(options))) {
  impl_->start();
}

PolicyResolver::~PolicyResolver() = default;

void PolicyResolver::resolve(const std::string& domain_in, Done done) {
  std::string domain = to_lower(domain_in);
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  Impl* impl = impl_.get();
  impl->inner.resolve(domain, [impl, domain, done = std::move(done)](dns::ResolveResult r) mutable {
    impl->on_inner(domain, std::move(r), std::move(done));
  });
}

bool PolicyResolver::needed(const config::TlsConfig& tls) {
  return tls.mta_sts || tls.dane || !tls.providers.empty() || !tls.domains.empty();
}

}  // namespace sluice::tlspolicy
