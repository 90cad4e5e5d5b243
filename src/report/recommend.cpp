#include "report/recommend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace sluice::report {
namespace {

uint64_t deferred(const Party& p, std::string_view category) {
  return p.deferred[category_index(category)];
}
uint64_t bounced(const Party& p, std::string_view category) {
  return p.bounces[category_index(category)];
}
// Pushback that says the sender sends too much or is not trusted (not the list's fault).
uint64_t pushback(const Party& p) {
  return deferred(p, "reputation") + deferred(p, "rate-limit") + deferred(p, "policy") +
         bounced(p, "reputation") + bounced(p, "policy");
}

std::string percent(double part, double whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return buf;
}

std::string minutes(int64_t ms) {
  char buf[32];
  if (ms < 120000)
    std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ms / 1000));
  else
    std::snprintf(buf, sizeof buf, "%lld min", static_cast<long long>(ms / 60000));
  return buf;
}

// The table that sets a group's limits: a provider's, or a site's when it has none.
std::string shaping_table(const Group& g) {
  const bool site = g.name.find_first_of(".:,") != std::string::npos;  // provider names have none
  return site ? "[shaping.site.\"" + g.name + "\"]" : "[shaping.provider." + g.name + "]";
}

// "src1 (12), src2 (3)": the parties with the most of a count, largest first.
template <typename Count>
std::string top(const std::map<std::string, Party>& parties, Count count, size_t n = 4) {
  std::vector<std::pair<uint64_t, std::string>> v;
  for (const auto& [name, p] : parties)
    if (const uint64_t c = count(p); c) v.emplace_back(c, name.empty() ? "(none)" : name);
  std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  std::string out;
  for (size_t i = 0; i < v.size() && i < n; ++i)
    out += (i ? ", " : "") + v[i].second + " (" + std::to_string(v[i].first) + ")";
  if (v.size() > n) out += ", …";
  return out;
}

double as_number(const std::string& s) {
  try {
    return std::stod(s);
  } catch (...) {
    return 0;
  }
}

// The lowest value of a per-source map of learned limits ("3", "12.5/s"); "" when none.
std::string lowest(const std::map<std::string, std::string>& learned) {
  std::string best;
  for (const auto& [source, value] : learned)
    if (best.empty() || as_number(value) < as_number(best)) best = value;
  return best;
}

std::string moves_summary(const Group& g, std::string_view limit) {
  std::map<std::string, std::vector<std::string>> path;  // source → values
  for (const LimitMove& m : g.moves) {
    if (m.limit != limit || m.reason.starts_with("slow start")) continue;
    std::vector<std::string>& v = path[m.source];
    if (v.empty()) v.push_back(m.from);
    if (v.back() != m.to) v.push_back(m.to);
  }
  std::string out;
  for (const auto& [source, v] : path) {
    out += out.empty() ? "" : "; ";
    out += (source.empty() ? "(default)" : source) + ": ";
    const size_t shown = std::min<size_t>(v.size(), 8);
    for (size_t i = 0; i < shown; ++i) out += (i ? "→" : "") + v[i];
    if (v.size() > shown) out += "→…→" + v.back();
  }
  return out;
}

uint32_t median(std::vector<uint32_t> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Whether a receiver held a sender below what it was configured to send: many refusals, or
// fewer that taught a lane a lower limit (sluice learns from the first; the operator who writes
// the limit down saves the probes that keep testing it).
struct Pushback {
  bool limit = false, rate = false;
};

Pushback pushed_back(const Group& g) {
  const Party& t = g.total;
  const uint64_t cl = deferred(t, "connection-limit"), rl = deferred(t, "rate-limit");
  const double attempts = static_cast<double>(t.attempts);
  Pushback p;
  const std::string learned = lowest(g.learned_limits);
  p.limit = (cl >= kMinSignals && cl >= kMinShare * attempts) ||
            (!learned.empty() &&
             (g.configured_limit.empty() || as_number(learned) < as_number(g.configured_limit)));
  p.rate = (rl >= kMinSignals && rl >= kMinShare * attempts) || !g.learned_rates.empty();
  return p;
}

void limits(const Group& g, std::vector<Recommendation>& out) {
  const Party& t = g.total;
  const uint64_t cl = deferred(t, "connection-limit"), rl = deferred(t, "rate-limit");
  const double attempts = static_cast<double>(t.attempts);
  const Pushback pushed = pushed_back(g);
  if (pushed.limit) {
    const std::string learned = lowest(g.learned_limits);
    Recommendation r{"lower-limit", g.name, 2, "", ""};
    r.action = learned.empty()
                   ? "Lower the connection limit for " + g.name + " in " + shaping_table(g) +
                         " (connection_limit) below the connections open when it refused"
                   : "Set " + shaping_table(g) + " connection_limit = " + learned +
                         " (per sending IP): what " + g.name + " allowed";
    r.evidence = std::to_string(cl) + " connection-limit deferrals (" + percent(cl, attempts) +
                 " of " + std::to_string(t.attempts) + " attempts), from sources " +
                 top(g.sources, [](const Party& p) { return deferred(p, "connection-limit"); });
    if (const std::string m = moves_summary(g, "connection_limit"); !m.empty())
      r.evidence += "; the limit moved " + m;
    if (auto it = g.last_reply.find("connection-limit"); it != g.last_reply.end())
      r.evidence += "; latest reply: " + it->second;
    out.push_back(std::move(r));
  }
  if (pushed.rate) {
    const std::string learned = lowest(g.learned_rates);
    Recommendation r{"lower-rate", g.name, 2, "", ""};
    r.action = learned.empty() ? "Lower message_rate for " + g.name + " in " + shaping_table(g)
                               : "Set " + shaping_table(g) + " message_rate = \"" + learned +
                                     "\" (per sending IP): the rate " + g.name + " accepted";
    r.evidence = std::to_string(rl) + " rate-limit deferrals (" + percent(rl, attempts) +
                 " of attempts), from sources " +
                 top(g.sources, [](const Party& p) { return deferred(p, "rate-limit"); });
    if (const std::string m = moves_summary(g, "message_rate"); !m.empty())
      r.evidence += "; the rate moved " + m;
    if (auto it = g.last_reply.find("rate-limit"); it != g.last_reply.end())
      r.evidence += "; latest reply: " + it->second;
    out.push_back(std::move(r));
  }
  // Never pushed back, yet messages waited: the configured limit, not the receiver, held them.
  const uint32_t waited = median(g.latency_s);
  if (cl == 0 && rl == 0 && pushback(t) == 0 && t.delivered >= 100 && waited >= 60 &&
      !g.configured_limit.empty()) {
    Recommendation r{"raise-limit", g.name, 1, "", ""};
    const int configured = static_cast<int>(as_number(g.configured_limit));
    r.action = "Raise " + shaping_table(g) + " connection_limit from " + g.configured_limit +
               " (try " + std::to_string(configured * 2) + "): " + g.name +
               " never pushed back while mail waited";
    r.evidence = std::to_string(t.delivered) + " delivered, no connection-limit, rate-limit or "
                 "reputation deferral; median wait from reception to delivery " +
                 minutes(int64_t{waited} * 1000);
    out.push_back(std::move(r));
  }
}

// A campaign sent as a burst to a receiver that pushed back, and most of the traffic it pushed
// back on. (Refusals at connect belong to whichever job the connection was for, often another
// tenant's priority mail: the campaign's share of the traffic says more than whose job met it.)
void campaigns(const Group& g, std::vector<Recommendation>& out) {
  const Pushback pushed = pushed_back(g);
  if (!pushed.limit && !pushed.rate) return;
  const uint64_t group_signals =
      deferred(g.total, "connection-limit") + deferred(g.total, "rate-limit");
  for (const auto& [name, c] : g.campaigns) {
    if (c.recipients < kMinBurst || 2 * c.attempts < g.total.attempts) continue;
    if (c.last_ms - c.first_ms > 3'600'000) continue;  // spread over hours already
    const int64_t span = std::max<int64_t>(c.last_ms - c.first_ms, 1000);
    // Spread it over four times what it took, at least an hour, rounded up to hours.
    const int64_t hours = std::max<int64_t>(1, (4 * span + 3599999) / 3600000);
    Recommendation r{"spread-campaign", g.name, 2, "", ""};
    r.action = "Spread campaign " + name + ": [campaign." + name + "] window = \"" +
               std::to_string(hours) + "h\" (or a rate), so that " + g.name +
               " sees a steady cadence instead of a burst";
    r.evidence = "campaign " + name + " sent " + std::to_string(c.recipients) + " recipients to " +
                 g.name + " in " + minutes(span) + ", " + percent(c.attempts, g.total.attempts) +
                 " of the attempts there, while " + g.name + " pushed back (" +
                 std::to_string(group_signals) + " connection- and rate-limit deferrals" +
                 (g.learned_limits.empty() && g.learned_rates.empty() ? "" : ", limits learned") +
                 ")";
    out.push_back(std::move(r));
  }
}

void sources(const Group& g, const Context& ctx, std::vector<Recommendation>& out) {
  if (g.sources.size() < 2 && !ctx.knows_warmup) return;
  for (const auto& [name, s] : g.sources) {
    const uint64_t mine = pushback(s);
    if (mine < kMinSignals || s.attempts == 0) continue;
    uint64_t others = 0, other_attempts = 0;
    for (const auto& [other, o] : g.sources)
      if (other != name) others += pushback(o), other_attempts += o.attempts;
    const double my_rate = static_cast<double>(mine) / static_cast<double>(s.attempts);
    const double their_rate =
        other_attempts ? static_cast<double>(others) / static_cast<double>(other_attempts) : 0;
    const bool warming = ctx.warming.count(name) > 0;
    const bool worse = other_attempts > 0 && my_rate >= 3 * their_rate;
    if (ctx.knows_warmup ? !(warming && my_rate >= kMinShare) : !worse) continue;
    Recommendation r{"slow-warmup", g.name, 2, "", ""};
    r.action = ctx.knows_warmup
                   ? "Slow the warm-up of source " + name + " for " + g.name +
                         ": give [source." + name +
                         "] a slower schedule (or [warmup.NAME.provider." + g.name +
                         "]) and let the pool's established sources carry the rest"
                   : "Source " + name + " draws " + percent(mine, s.attempts) + " pushback from " +
                         g.name + " against " + percent(others, other_attempts) +
                         " on the others: if it is warming up, slow its schedule; else rest it "
                         "(suspend it) and check its reputation";
    r.evidence = std::to_string(mine) + " reputation, rate-limit and policy refusals in " +
                 std::to_string(s.attempts) + " attempts through " + name + " (" +
                 percent(mine, s.attempts) + "); other sources: " + std::to_string(others) +
                 " in " + std::to_string(other_attempts) + " (" +
                 percent(others, other_attempts) + ")";
    out.push_back(std::move(r));
  }
}

void tenants(const Group& g, std::vector<Recommendation>& out) {
  // Bad signals a tenant's own list and content cause, that hurt everyone on its pool (a rate
  // limit is about volume, not about whose mail it is).
  auto harm = [](const Party& p) {
    return deferred(p, "reputation") + deferred(p, "policy") + bounced(p, "reputation") +
           bounced(p, "policy") + bounced(p, "user-unknown");
  };
  for (const auto& [name, t] : g.tenants) {
    if (name.empty() || t.attempts == 0 || harm(t) < kMinSignals) continue;
    uint64_t others = 0, other_attempts = 0;
    size_t sharing = 0;
    for (const auto& [other, o] : g.tenants) {
      if (other == name || o.pool != t.pool) continue;
      ++sharing;
      others += harm(o);
      other_attempts += o.attempts;
    }
    if (sharing == 0) continue;  // alone on its pool already
    const double mine = static_cast<double>(harm(t)) / static_cast<double>(t.attempts);
    const double theirs =
        other_attempts ? static_cast<double>(others) / static_cast<double>(other_attempts) : 0;
    if (mine < 3 * theirs || mine < kMinShare) continue;
    Recommendation r{"move-tenant", g.name, 2, "", ""};
    r.action = "Move tenant " + name + " off the shared pool " +
               (t.pool.empty() ? std::string("default") : t.pool) + ": [tenant." + name +
               "] pool = a dedicated pool, so its reputation is its own";
    r.evidence = "tenant " + name + ": " + std::to_string(harm(t)) +
                 " reputation/policy refusals and unknown users in " +
                 std::to_string(t.attempts) + " attempts to " + g.name + " (" +
                 percent(harm(t), t.attempts) + "); the " + std::to_string(sharing) +
                 " other tenant(s) on its pool: " + percent(others, other_attempts);
    out.push_back(std::move(r));
    if (bounced(t, "user-unknown") >= kMinSignals &&
        bounced(t, "user-unknown") >= kMinShare * static_cast<double>(t.recipients)) {
      Recommendation c{"clean-list", g.name, 1, "", ""};
      c.action = "Tenant " + name + " sends to addresses that do not exist: remove bounced "
                 "addresses from its list (or require confirmed opt-in)";
      c.evidence = std::to_string(bounced(t, "user-unknown")) + " unknown users of " +
                   std::to_string(t.recipients) + " recipients at " + g.name;
      out.push_back(std::move(c));
    }
  }
}

void trust(const Group& g, const Context& ctx, std::vector<Recommendation>& out) {
  const Party& t = g.total;
  const uint64_t auth = deferred(t, "authentication") + bounced(t, "authentication");
  if (auth > 0) {
    std::string domains;
    for (const auto& [d, n] : g.sender_domains)
      domains += (domains.empty() ? "" : ", ") + (d.empty() ? std::string("<>") : d);
    const std::string first = g.sender_domains.empty() ? "DOMAIN" : g.sender_domains.begin()->first;
    Recommendation r{"fix-authentication", g.name, 3, "", ""};
    r.action = "Fix SPF, DKIM and DMARC for sender domain(s) " + domains + ": " + g.name +
               " refuses their mail as unauthenticated (sluice auth-check " + first + ")";
    r.evidence = std::to_string(auth) + " authentication refusals (" +
                 std::to_string(bounced(t, "authentication")) + " bounced)";
    if (auto it = g.last_reply.find("authentication"); it != g.last_reply.end())
      r.evidence += "; latest reply: " + it->second;
    out.push_back(std::move(r));
  }
  const uint64_t rep = deferred(t, "reputation") + bounced(t, "reputation");
  if (!g.suspensions.empty() || rep >= kMinSignals) {
    std::set<std::string> srcs;
    for (const Suspension& s : g.suspensions) srcs.insert(s.source.empty() ? "(default)" : s.source);
    std::string names;
    for (const std::string& s : srcs) names += (names.empty() ? "" : ", ") + s;
    auto page = ctx.postmaster.find(g.name);
    Recommendation r{"contact-postmaster", g.name, 3, "", ""};
    r.action = "Check " + g.name + "'s reputation data and contact its postmaster" +
               (page != ctx.postmaster.end() ? " (" + page->second + ")" : std::string()) +
               " with the sending IPs and the reply; until it clears, send less to " + g.name;
    r.evidence = std::to_string(rep) + " reputation refusals, " +
                 std::to_string(g.suspensions.size()) + " suspension(s)" +
                 (names.empty() ? std::string() : " of " + names);
    if (!g.suspensions.empty())
      r.evidence += "; latest: " + g.suspensions.back().reply + " (for " +
                    g.suspensions.back().duration + ")";
    else if (auto it = g.last_reply.find("reputation"); it != g.last_reply.end())
      r.evidence += "; latest reply: " + it->second;
    out.push_back(std::move(r));
  }
}

// A recipient domain whose receivers fail the TLS sluice requires of them (its MTA-STS or DANE
// policy, [tls.domain], or the receiver's own demand): its mail waits until they fix it or it
// expires. A few refusals among deliveries are noise (one bad MX host of several).
void tls(const Group& d, std::vector<Recommendation>& out) {
  const Party& t = d.total;
  const uint64_t n = deferred(t, "tls") + bounced(t, "tls");
  if (n == 0 || (n < kMinSignals && t.delivered > 0)) return;
  Recommendation r{"fix-tls", d.name, 3, "", ""};
  r.action = "Mail to " + d.name +
             " waits on TLS: send the reply to its postmaster (a certificate, MTA-STS policy or "
             "TLSA record that does not verify); if it must go before they fix it, "
             "[tls.domain] \"" +
             d.name + "\" = \"opportunistic\" drops the check for this domain only";
  r.evidence = std::to_string(n) + " TLS refusals, " + std::to_string(t.delivered) +
               " delivered, " + std::to_string(d.expired) + " expired";
  if (auto it = d.last_reply.find("tls"); it != d.last_reply.end())
    r.evidence += "; latest reply: " + it->second;
  out.push_back(std::move(r));
}

}  // namespace

std::vector<Recommendation> recommend(const Analysis& a, const Context& ctx) {
  std::vector<Recommendation> out;
  for (const auto& [name, g] : a.providers()) {
    trust(g, ctx, out);
    limits(g, out);
    campaigns(g, out);
    sources(g, ctx, out);
    tenants(g, out);
  }
  for (const auto& [name, d] : a.domains()) tls(d, out);
  std::stable_sort(out.begin(), out.end(), [](const Recommendation& x, const Recommendation& y) {
    return x.severity > y.severity;
  });
  return out;
}

}  // namespace sluice::report
