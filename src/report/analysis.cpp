#include "report/analysis.h"

#include <boost/json.hpp>
#include <functional>

namespace sluice::report {
namespace json = boost::json;
namespace {

std::string_view str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_string()) return {};
  return v->get_string();
}

int64_t num(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  return 0;
}

std::string domain_of(std::string_view address) {
  const size_t at = address.rfind('@');
  std::string d(at == std::string_view::npos ? std::string_view() : address.substr(at + 1));
  for (char& c : d) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return d;
}

void touch(Party& p, int64_t ts) {
  if (!p.first_ms || ts < p.first_ms) p.first_ms = ts;
  p.last_ms = std::max(p.last_ms, ts);
}

// One attempt's outcome counted into a party.
void count(Party& p, int64_t ts, bool is_new, std::string_view event, size_t category) {
  touch(p, ts);
  ++p.attempts;
  if (is_new) ++p.recipients;
  if (event == "Delivery") {
    ++p.delivered;
  } else if (event == "Bounce") {
    ++p.bounced;
    ++p.bounces[category];
  } else {
    ++p.deferred[category];
  }
}

bool numeric_less(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

}  // namespace

size_t category_index(std::string_view category) {
  for (size_t i = 0; i < kCategories.size(); ++i)
    if (kCategories[i] == category) return i;
  return category_index("other");
}

std::optional<int64_t> parse_timestamp(std::string_view ts) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (ts.size() < 20 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':' ||
      ts[16] != ':')
    return std::nullopt;
  auto digits = [&](size_t at, size_t n) -> int64_t {
    int64_t v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (ts[i] < '0' || ts[i] > '9') return -1;
      v = v * 10 + (ts[i] - '0');
    }
    return v;
  };
  const int64_t y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2),
                mi = digits(14, 2), s = digits(17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || mi < 0 || s < 0)
    return std::nullopt;
  int64_t ms = 0;
  size_t at = 19;
  if (ts[at] == '.') {
    int64_t scale = 100;
    for (++at; at < ts.size() && ts[at] >= '0' && ts[at] <= '9'; ++at, scale /= 10)
      ms += (ts[at] - '0') * scale;
  }
  if (at >= ts.size() || ts[at] != 'Z') return std::nullopt;
  // Days from the civil date (H. Hinnant's algorithm).
  const int64_t yy = y - (mo <= 2);
  const int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  const int64_t yoe = yy - era * 400;
  const int64_t doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = era * 146097 + doe - 719468;
  return ((days * 24 + h) * 60 + mi) * 60000 + s * 1000 + ms;
}

Group& Analysis::group(std::map<std::string, Group>& in, const std::string& name) {
  Group& g = in[name];
  if (g.name.empty()) g.name = name;
  return g;
}

bool Analysis::add(const json::object& r) {
  const std::string_view event = str(r, "event");
  if (event.empty()) return false;
  ++records_;
  const int64_t ts = parse_timestamp(str(r, "ts")).value_or(last_ms_);
  if (ts) {
    if (!first_ms_ || ts < first_ms_) first_ms_ = ts;
    last_ms_ = std::max(last_ms_, ts);
  }
  if (event == "Reception") {
    const json::value* rcpts = r.if_contains("recipients");
    if (rcpts && rcpts->is_array()) received_ += rcpts->get_array().size();
  } else if (event == "Delivery" || event == "TransientFailure" || event == "Bounce") {
    attempt(r, event, ts);
  } else if (event == "Expiration") {
    Group& d = group(domains_, domain_of(str(r, "recipient")));
    ++d.expired;
    if (!d.provider.empty()) ++group(providers_, d.provider).expired;
  } else if (event == "ThrottleChange" || event == "Suspension") {
    limit_change(r, ts, event == "Suspension");
  }
  return true;
}

void Analysis::attempt(const json::object& r, std::string_view event, int64_t ts) {
  const std::string_view recipient = str(r, "recipient");
  const std::string provider_name(str(r, "provider").empty() ? str(r, "site")
                                                             : str(r, "provider"));
  const std::string domain = domain_of(recipient);
  const size_t category =
      event == "Delivery" ? category_index("delivered") : category_index(str(r, "category"));
  std::string key(str(r, "id"));
  key.push_back('\0');
  key.append(recipient);
  const bool is_new = seen_.insert(std::hash<std::string>{}(key)).second;

  // The reply as the receiver wrote it: code, enhanced code, text.
  std::string reply;
  if (const int64_t code = num(r, "code"); code) reply = std::to_string(code) + " ";
  if (const std::string_view e = str(r, "enhanced"); !e.empty()) reply.append(e).push_back(' ');
  reply.append(str(r, "reply"));

  Group& p = group(providers_, provider_name);
  Group& d = group(domains_, domain);
  d.provider = provider_name;
  for (Group* g : {&p, &d}) {
    count(g->total, ts, is_new, event, category);
    count(g->sources[std::string(str(r, "source"))], ts, is_new, event, category);
    Party& tenant = g->tenants[std::string(str(r, "tenant"))];
    count(tenant, ts, is_new, event, category);
    tenant.pool = str(r, "pool");
    if (const std::string_view c = str(r, "campaign"); !c.empty())
      count(g->campaigns[std::string(c)], ts, is_new, event, category);
    if (event != "Delivery") {
      g->last_reply[std::string(kCategories[category])] = reply;
      ++g->rules[std::string(str(r, "rule"))];
      if (kCategories[category] == "authentication")
        ++g->sender_domains[domain_of(str(r, "sender"))];
    }
  }
  ++p.per_minute[ts / 60000][category];
  if (event == "Delivery") {
    const int64_t received = num(r, "received_ms");
    if (received > 0 && ts >= received) {
      // Reservoir sampling (Vitter's algorithm R) with a fixed-seed generator: the same log
      // gives the same report.
      const auto seconds = static_cast<uint32_t>((ts - received) / 1000);
      ++p.latency_seen;
      if (p.latency_s.size() < kMaxLatency) {
        p.latency_s.push_back(seconds);
      } else {
        rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
        const uint64_t slot = (rng_ >> 33) % p.latency_seen;
        if (slot < kMaxLatency) p.latency_s[slot] = seconds;
      }
    }
  }
}

void Analysis::limit_change(const json::object& r, int64_t ts, bool suspension) {
  const std::string name(str(r, "provider").empty() ? str(r, "site") : str(r, "provider"));
  Group& g = group(providers_, name);
  const std::string source(str(r, "source"));
  if (suspension) {
    g.suspensions.push_back({ts, source, std::string(str(r, "duration")),
                             std::string(str(r, "reply"))});
    return;
  }
  LimitMove m{ts, source, std::string(str(r, "limit")), std::string(str(r, "from")),
              std::string(str(r, "to")), std::string(str(r, "reason"))};
  if (m.limit == "connection_limit") {
    // Slow start counts up to the configured limit: the highest "to" it reaches is it.
    if (m.reason.starts_with("slow start") && !g.configured_known &&
        numeric_less(g.configured_limit, m.to))
      g.configured_limit = m.to;
    // What the receiver allowed: the level a signal set, or the higher one the controller took
    // back to when connections set up before the signal kept working.
    if (m.reason.starts_with("connection-limit signal") ||
        m.reason.starts_with("connections set up before the signal work"))
      g.learned_limits[source] = m.to;
  } else if (m.limit == "message_rate" && m.reason.starts_with("rate-limit signal")) {
    g.learned_rates[source] = m.to;
  }
  if (g.moves.size() < kMaxMoves)
    g.moves.push_back(std::move(m));
  else
    ++g.moves_dropped;
}

void Analysis::set_configured_limit(const std::string& name, const std::string& limit) {
  auto it = providers_.find(name);
  if (it == providers_.end()) return;
  it->second.configured_limit = limit;
  it->second.configured_known = true;
}

}  // namespace sluice::report
