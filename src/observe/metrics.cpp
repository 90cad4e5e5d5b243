#include "observe/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sluice::observe {
namespace {

void append_value(std::string& out, double v) {
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.9g", v);
  out += buf;
}

// Label values escaped as the text format asks: backslash, double quote and newline.
void append_labels(std::string& out, const Labels& labels) {
  if (labels.empty()) return;
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out += k;
    out += "=\"";
    for (char c : v) {
      if (c == '\\' || c == '"') out.push_back('\\');
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
}

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  out += "# HELP ";
  out += name;
  out.push_back(' ');
  out += help;
  out += "\n# TYPE ";
  out += name;
  out.push_back(' ');
  out += type;
  out.push_back('\n');
}

}  // namespace

void append_sample(std::string& out, std::string_view name, const Labels& labels, double value) {
  out += name;
  append_labels(out, labels);
  out.push_back(' ');
  append_value(out, value);
  out.push_back('\n');
}

void Gauges::family(std::string_view name, std::string_view help) {
  append_header(text_, name, help, "gauge");
}

void Metrics::counter(std::string name, std::string help) {
  std::lock_guard lock(mu_);
  families_.push_back(Family{std::move(name), std::move(help), "counter", {}, {}});
}

void Metrics::histogram(std::string name, std::string help, std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard lock(mu_);
  families_.push_back(Family{std::move(name), std::move(help), "histogram", std::move(bounds), {}});
}

Metrics::Family* Metrics::find(std::string_view name) {
  for (auto& f : families_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void Metrics::inc(std::string_view name, const Labels& labels, double by) {
  std::lock_guard lock(mu_);
  if (Family* f = find(name)) f->series[labels].value += by;
}

void Metrics::observe(std::string_view name, double value, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family* f = find(name);
  if (!f) return;
  Series& s = f->series[labels];
  if (s.buckets.empty()) s.buckets.assign(f->bounds.size(), 0);
  // Per bucket (not cumulative) here; render() adds them up.
  const auto at = std::lower_bound(f->bounds.begin(), f->bounds.end(), value);
  if (at != f->bounds.end()) ++s.buckets[static_cast<size_t>(at - f->bounds.begin())];
  s.sum += value;
  ++s.count;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& f : families_) {
    append_header(out, f.name, f.help, f.type);
    for (const auto& [labels, s] : f.series) {
      if (f.type == "counter") {
        append_sample(out, f.name, labels, s.value);
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        cumulative += s.buckets[i];
        Labels with = labels;
        char le[64];
        std::snprintf(le, sizeof le, "%g", f.bounds[i]);
        with.emplace_back("le", le);
        append_sample(out, f.name + "_bucket", with, static_cast<double>(cumulative));
      }
      Labels inf = labels;
      inf.emplace_back("le", "+Inf");
      append_sample(out, f.name + "_bucket", inf, static_cast<double>(s.count));
      append_sample(out, f.name + "_sum", labels, s.sum);
      append_sample(out, f.name + "_count", labels, static_cast<double>(s.count));
    }
  }
  return out;
}

void declare_metrics(Metrics& m) {
  using namespace metric;
  m.counter(std::string(kReceived), "Messages accepted (after the spool's synced write), by tenant.");
  m.counter(std::string(kDelivered),
            "Recipients delivered, by provider, egress source and tenant.");
  m.counter(std::string(kDeferred),
            "Recipient attempts deferred (a transient failure or a throttle signal), by provider, "
            "source, tenant and reply category.");
  m.counter(std::string(kBounced),
            "Recipients refused for good, by provider, source, tenant and reply category.");
  m.counter(std::string(kExpired), "Recipients still deferred when their message expired.");
  m.histogram(std::string(kSpoolSync), "Duration of the spool's synced group writes.",
              {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
  m.histogram(std::string(kDeliveryLatency),
              "From a message's acceptance to a recipient's delivery.",
              {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600, 21600, 86400});
}

}  // namespace sluice::observe
