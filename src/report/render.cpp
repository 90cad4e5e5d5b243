#include "report/render.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>

#include "core/json.h"
#include "core/text.h"

namespace sluice::report {
namespace json = boost::json;
namespace {

constexpr size_t kDelivered = kCategories.size() - 1;

uint64_t deferrals(const Party& p) {
  uint64_t n = 0;
  for (uint64_t c : p.deferred) n += c;
  return n;
}

std::string span_text(int64_t ms) {
  char buf[48];
  const int64_t s = ms / 1000;
  if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lld min %lld s", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld h %lld min", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  return buf;
}

// The groups with the most recipients first.
std::vector<const Group*> by_volume(const std::map<std::string, Group>& groups) {
  std::vector<const Group*> v;
  for (const auto& [name, g] : groups) v.push_back(&g);
  std::stable_sort(v.begin(), v.end(), [](const Group* x, const Group* y) {
    return x->total.recipients > y->total.recipients;
  });
  return v;
}

std::string cell(const std::string& s, size_t width, bool left = false) {
  std::string t = s.size() > width ? s.substr(0, width - 1) + "~" : s;
  const std::string pad(width - t.size(), ' ');
  return left ? t + pad : pad + t;
}

std::string learned_text(const Group& g) {
  std::string out;
  for (const auto& [source, v] : g.learned_limits)
    out += (out.empty() ? "" : ",") + v;
  return out.empty() ? "-" : out;
}

// Columns of the summary table: name, then these counts.
struct Column {
  const char* title;
  uint64_t (*value)(const Group&);
};
const Column kColumns[] = {
    {"rcpts", [](const Group& g) { return g.total.recipients; }},
    {"delivered", [](const Group& g) { return g.total.delivered; }},
    {"bounced", [](const Group& g) { return g.total.bounced; }},
    {"expired", [](const Group& g) { return g.expired; }},
    {"deferred", [](const Group& g) { return deferrals(g.total); }},
    {"conn-lim", [](const Group& g) { return g.total.deferred[0]; }},
    {"rate-lim", [](const Group& g) { return g.total.deferred[1]; }},
    {"reput", [](const Group& g) { return g.total.deferred[2]; }},
    {"grey", [](const Group& g) { return g.total.deferred[3]; }},
};

void table(std::string& out, const char* title, const std::vector<const Group*>& groups,
           size_t limit, bool with_limits) {
  out += cell(title, 28, true);
  for (const Column& c : kColumns) out += cell(c.title, 10);
  if (with_limits) out += "  " + cell("limit conf/learned", 20, true) + "susp";
  out += "\n";
  for (size_t i = 0; i < groups.size() && i < limit; ++i) {
    const Group& g = *groups[i];
    out += cell(g.name.empty() ? "(unknown)" : g.name, 28, true);
    for (const Column& c : kColumns) out += cell(std::to_string(c.value(g)), 10);
    if (with_limits)
      out += "  " +
             cell((g.configured_limit.empty() ? "-" : g.configured_limit) + "/" + learned_text(g),
                  20, true) +
             std::to_string(g.suspensions.size());
    out += "\n";
  }
  if (groups.size() > limit) out += "… and " + std::to_string(groups.size() - limit) + " more\n";
}

std::string tod(int64_t ms) { return utc_timestamp(ms).substr(11, 8); }

void pattern_text(std::string& out, const Analysis& a, const Group& g) {
  const uint64_t cl = g.total.deferred[0];
  const Timeline t = timeline(a, g);
  out += "\n" + g.name + ": " + std::to_string(g.total.recipients) + " recipients, " +
         std::to_string(g.total.delivered) + " delivered, " + std::to_string(deferrals(g.total)) +
         " deferrals, " + std::to_string(g.total.bounced) + " bounces\n";
  // Deferrals by category over time, one row per category that occurred.
  out += "  per " + std::to_string(t.minutes) + " min from " + tod(t.start_minute * 60000) + "\n";
  for (size_t c = 0; c < kCategories.size(); ++c) {
    const std::vector<uint64_t>& s = t.series[c];
    uint64_t peak = 0;
    for (uint64_t v : s) peak = std::max(peak, v);
    if (peak == 0) continue;
    static const char* kBars[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    std::string bars;
    for (uint64_t v : s) bars += kBars[v == 0 ? 0 : 1 + v * 7 / peak];
    out += "  " + cell(std::string(kCategories[c]), 17, true) + bars + "  peak " +
           std::to_string(peak) + "\n";
  }
  if (cl) {
    int64_t first = 0, last = 0;
    for (const auto& [name, s] : g.sources)
      if (s.deferred[0]) first = first ? std::min(first, s.first_ms) : s.first_ms,
                         last = std::max(last, s.last_ms);
    out += "  connection limit: " + std::to_string(cl) + " deferrals between " + tod(first) +
           " and " + tod(last) + "; by source:";
    for (const auto& [name, s] : g.sources)
      if (s.deferred[0])
        out += " " + (name.empty() ? std::string("(default)") : name) + " " +
               std::to_string(s.deferred[0]);
    out += "\n";
  }
  // Limit changes that carry news (slow start's climb is only counted; the JSON has it all).
  size_t shown = 0, climbing = 0;
  for (const LimitMove& m : g.moves) {
    if (m.reason.starts_with("slow start")) {
      ++climbing;
      continue;
    }
    if (++shown > 8) continue;
    out += "  " + tod(m.ts_ms) + " " + (m.source.empty() ? "(default)" : m.source) + " " +
           m.limit + " " + m.from + " → " + m.to + " (" + m.reason + ")\n";
  }
  if (shown > 8) out += "  … " + std::to_string(shown - 8) + " more limit changes\n";
  if (climbing) out += "  (" + std::to_string(climbing) + " slow-start steps)\n";
  for (const Suspension& s : g.suspensions)
    out += "  " + tod(s.ts_ms) + " suspended " + (s.source.empty() ? "(default)" : s.source) +
           " for " + s.duration + ": " + s.reply + "\n";
  for (const auto& [category, reply] : g.last_reply)
    out += "  latest " + category + ": " + reply + "\n";
}

json::object counts_json(const CategoryCounts& c, bool with_delivered = false) {
  json::object o;
  for (size_t i = 0; i < kCategories.size(); ++i)
    if (c[i] && (with_delivered || i != kDelivered)) o[kCategories[i]] = c[i];
  return o;
}

json::object party_json(const Party& p) {
  return {{"recipients", p.recipients}, {"attempts", p.attempts},
          {"delivered", p.delivered},   {"bounced", p.bounced},
          {"deferred", counts_json(p.deferred)}, {"bounces", counts_json(p.bounces)},
          {"pool", p.pool}};
}

json::object parties_json(const std::map<std::string, Party>& m) {
  json::object o;
  for (const auto& [name, p] : m) o[name] = party_json(p);
  return o;
}

json::object group_json(const Analysis& a, const Group& g, bool detail) {
  json::object o{{"name", g.name},
                 {"recipients", g.total.recipients},
                 {"attempts", g.total.attempts},
                 {"delivered", g.total.delivered},
                 {"bounced", g.total.bounced},
                 {"expired", g.expired},
                 {"deferred", counts_json(g.total.deferred)},
                 {"bounces", counts_json(g.total.bounces)}};
  if (!detail) {
    o["provider"] = g.provider;
    return o;
  }
  const Timeline t = timeline(a, g);
  json::object series;
  for (size_t c = 0; c < kCategories.size(); ++c) {
    bool any = false;
    json::array v;
    for (uint64_t n : t.series[c]) v.push_back(n), any = any || n;
    if (any) series[kCategories[c]] = std::move(v);
  }
  o["timeline"] = {{"start", utc_timestamp(t.start_minute * 60000)},
                   {"bucket_minutes", t.minutes},
                   {"series", std::move(series)}};
  json::object learned, learned_rates, by_source;
  for (const auto& [s, v] : g.learned_limits) learned[s] = v;
  for (const auto& [s, v] : g.learned_rates) learned_rates[s] = v;
  for (const auto& [s, p] : g.sources)
    if (p.deferred[0]) by_source[s] = p.deferred[0];
  json::array moves;
  for (const LimitMove& m : g.moves)
    moves.push_back({{"ts", utc_timestamp(m.ts_ms)}, {"source", m.source}, {"limit", m.limit},
                     {"from", m.from}, {"to", m.to}, {"reason", m.reason}});
  o["connection_limit"] = {{"configured", g.configured_limit},
                           {"learned", std::move(learned)},
                           {"learned_rate", std::move(learned_rates)},
                           {"deferrals_by_source", std::move(by_source)},
                           {"moves", std::move(moves)},
                           {"moves_not_shown", g.moves_dropped}};
  json::array susp;
  for (const Suspension& s : g.suspensions)
    susp.push_back({{"ts", utc_timestamp(s.ts_ms)}, {"source", s.source},
                    {"duration", s.duration}, {"reply", s.reply}});
  o["suspensions"] = std::move(susp);
  json::object replies;
  for (const auto& [c, r] : g.last_reply) replies[c] = r;
  o["latest_replies"] = std::move(replies);
  o["sources"] = parties_json(g.sources);
  o["tenants"] = parties_json(g.tenants);
  o["campaigns"] = parties_json(g.campaigns);
  return o;
}

json::object recommendation_json(const Recommendation& r) {
  return {{"kind", r.kind},         {"provider", r.provider}, {"severity", r.severity},
          {"action", r.action},     {"evidence", r.evidence}};
}

// A colour per category for the charts (connection-limit first, the signal this is all about).
const char* kColours[] = {"#d62728", "#ff7f0e", "#8c564b", "#bcbd22", "#17becf", "#9467bd",
                          "#e377c2", "#7f7f7f", "#1f77b4", "#aec7e8", "#ffbb78", "#c7c7c7",
                          "#2ca02c"};

// Stacked bars per bucket: deferrals by category (and deliveries, in their own chart).
std::string svg_chart(const Timeline& t, bool delivered) {
  const int w = 720, h = 180, left = 48, bottom = 20;
  uint64_t peak = 1;
  for (size_t b = 0; b < t.buckets; ++b) {
    uint64_t sum = 0;
    for (size_t c = 0; c < kCategories.size(); ++c)
      if ((c == kDelivered) == delivered) sum += t.series[c][b];
    peak = std::max(peak, sum);
  }
  const double bw = static_cast<double>(w - left) / static_cast<double>(std::max<size_t>(1, t.buckets));
  char buf[256];
  std::string out = "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(w) +
                    "' height='" + std::to_string(h) + "' role='img'>";
  std::snprintf(buf, sizeof buf,
                "<text x='0' y='12' font-size='10'>%llu</text><text x='0' y='%d' "
                "font-size='10'>0</text>",
                static_cast<unsigned long long>(peak), h - bottom);
  out += buf;
  for (size_t b = 0; b < t.buckets; ++b) {
    double y = h - bottom;
    for (size_t c = 0; c < kCategories.size(); ++c) {
      if ((c == kDelivered) != delivered || !t.series[c][b]) continue;
      const double bh = static_cast<double>(t.series[c][b]) * (h - bottom - 14) /
                        static_cast<double>(peak);
      y -= bh;
      std::snprintf(buf, sizeof buf,
                    "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'><title>%s: "
                    "%llu</title></rect>",
                    left + b * bw, y, std::max(1.0, bw - 1), bh, kColours[c],
                    std::string(kCategories[c]).c_str(),
                    static_cast<unsigned long long>(t.series[c][b]));
      out += buf;
    }
  }
  std::snprintf(buf, sizeof buf,
                "<text x='%d' y='%d' font-size='10'>%s</text><text x='%d' y='%d' font-size='10' "
                "text-anchor='end'>%s min per bar</text>",
                left, h - 4, utc_timestamp(t.start_minute * 60000).substr(11, 5).c_str(), w, h - 4,
                std::to_string(t.minutes).c_str());
  out += buf;
  return out + "</svg>";
}

std::string legend(bool delivered) {
  std::string out = "<p class='legend'>";
  for (size_t c = 0; c < kCategories.size(); ++c)
    if ((c == kDelivered) == delivered)
      out += "<span style='background:" + std::string(kColours[c]) + "'></span>" +
             std::string(kCategories[c]) + " ";
  return out + "</p>";
}

std::string html_table(const std::vector<const Group*>& groups, size_t limit) {
  std::string out = "<table><tr><th>name</th>";
  for (const Column& c : kColumns) out += "<th>" + std::string(c.title) + "</th>";
  out += "</tr>";
  for (size_t i = 0; i < groups.size() && i < limit; ++i) {
    out += "<tr><td>" + html_escape(groups[i]->name) + "</td>";
    for (const Column& c : kColumns) out += "<td>" + std::to_string(c.value(*groups[i])) + "</td>";
    out += "</tr>";
  }
  return out + "</table>";
}

}  // namespace

Timeline timeline(const Analysis& a, const Group& g) {
  Timeline t;
  const int64_t first = a.first_ms() / 60000, last = a.last_ms() / 60000;
  t.start_minute = first;
  const int64_t span = last - first + 1;
  t.minutes = std::max<int64_t>(1, (span + 59) / 60);
  t.buckets = static_cast<size_t>((span + t.minutes - 1) / t.minutes);
  t.series.assign(kCategories.size(), std::vector<uint64_t>(t.buckets, 0));
  for (const auto& [minute, counts] : g.per_minute) {
    const int64_t b = (minute - first) / t.minutes;
    if (b < 0 || static_cast<size_t>(b) >= t.buckets) continue;
    for (size_t c = 0; c < kCategories.size(); ++c) t.series[c][static_cast<size_t>(b)] += counts[c];
  }
  return t;
}

std::string render_text(const Analysis& a, const std::vector<Recommendation>& recs,
                        const RenderOptions& o) {
  std::string out = "sluice report: " + std::to_string(a.records()) + " records";
  if (a.first_ms())
    out += ", " + utc_timestamp(a.first_ms()) + " to " + utc_timestamp(a.last_ms()) + " (" +
           span_text(a.last_ms() - a.first_ms()) + ")";
  out += "; " + std::to_string(a.received()) + " recipients received\n\n";
  table(out, "PROVIDER", by_volume(a.providers()), SIZE_MAX, true);
  out += "\n";
  table(out, "DOMAIN", by_volume(a.domains()), o.max_domains, false);
  for (const Group* g : by_volume(a.providers())) pattern_text(out, a, *g);
  out += "\nRECOMMENDATIONS\n";
  if (recs.empty()) out += "  none: no provider pushed back beyond noise\n";
  int n = 0;
  for (const Recommendation& r : recs) {
    static const char* kSeverity[] = {"", "consider", "soon", "act now"};
    out += std::to_string(++n) + ". [" + kSeverity[std::clamp(r.severity, 1, 3)] + "] " +
           r.provider + ": " + r.action + "\n   evidence: " + r.evidence + "\n";
  }
  return out;
}

std::string render_json(const Analysis& a, const std::vector<Recommendation>& recs) {
  json::array providers, domains, recommendations;
  for (const Group* g : by_volume(a.providers())) providers.push_back(group_json(a, *g, true));
  for (const Group* g : by_volume(a.domains())) domains.push_back(group_json(a, *g, false));
  for (const Recommendation& r : recs) recommendations.push_back(recommendation_json(r));
  json::object doc{{"records", a.records()},
                   {"received", a.received()},
                   {"first", a.first_ms() ? utc_timestamp(a.first_ms()) : ""},
                   {"last", a.last_ms() ? utc_timestamp(a.last_ms()) : ""},
                   {"providers", std::move(providers)},
                   {"domains", std::move(domains)},
                   {"recommendations", std::move(recommendations)}};
  return json::serialize(doc) + "\n";
}

std::string render_html(const Analysis& a, const std::vector<Recommendation>& recs,
                        const RenderOptions& o) {
  std::string out =
      "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sluice deliverability "
      "report</title><style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}"
      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
      "text-align:right}td:first-child,th:first-child{text-align:left}.rec{border-left:4px solid "
      "#d62728;padding:4px 12px;margin:8px 0;background:#fafafa}.sev1{border-color:#bcbd22}"
      ".sev2{border-color:#ff7f0e}.evidence{color:#555;font-size:13px}.legend span{display:"
      "inline-block;width:10px;height:10px;margin:0 4px 0 10px}code{font-size:12px}</style>"
      "</head><body><h1>Deliverability report</h1><p>";
  out += std::to_string(a.records()) + " log records";
  if (a.first_ms())
    out += ", " + utc_timestamp(a.first_ms()) + " to " + utc_timestamp(a.last_ms());
  out += "; " + std::to_string(a.received()) + " recipients received.</p><h2>Recommendations</h2>";
  if (recs.empty()) out += "<p>None: no provider pushed back beyond noise.</p>";
  for (const Recommendation& r : recs)
    out += "<div class='rec sev" + std::to_string(r.severity) + "' data-kind='" + r.kind +
           "'><b>" + html_escape(r.provider) + "</b>: " + html_escape(r.action) +
           "<div class='evidence'>" + html_escape(r.evidence) + "</div></div>";
  out += "<h2>Providers</h2>" + html_table(by_volume(a.providers()), SIZE_MAX);
  out += "<h2>Domains</h2>" + html_table(by_volume(a.domains()), o.max_domains);
  for (const Group* g : by_volume(a.providers())) {
    const Timeline t = timeline(a, *g);
    out += "<h2>" + html_escape(g->name) + "</h2><h3>Deferrals over time</h3>" +
           svg_chart(t, false) + legend(false) + "<h3>Deliveries over time</h3>" +
           svg_chart(t, true);
    if (!g->moves.empty()) {
      out += "<h3>Limit changes</h3><table><tr><th>time</th><th>source</th><th>limit</th>"
             "<th>from</th><th>to</th><th>reason</th></tr>";
      for (const LimitMove& m : g->moves)
        out += "<tr><td>" + utc_timestamp(m.ts_ms) + "</td><td>" + html_escape(m.source) +
               "</td><td>" + m.limit + "</td><td>" + html_escape(m.from) + "</td><td>" +
               html_escape(m.to) + "</td><td>" + html_escape(m.reason) + "</td></tr>";
      out += "</table>";
    }
    for (const Suspension& s : g->suspensions)
      out += "<p>Suspended " + html_escape(s.source) + " at " + utc_timestamp(s.ts_ms) + " for " +
             html_escape(s.duration) + ": <code>" + html_escape(s.reply) + "</code></p>";
    for (const auto& [category, reply] : g->last_reply)
      out += "<p>Latest " + category + ": <code>" + html_escape(reply) + "</code></p>";
  }
  return out + "</body></html>\n";
}

}  // namespace sluice::report
