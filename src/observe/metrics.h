// Metrics in the Prometheus text format (version 0.0.4), served at /metrics.
//
// Counters and histograms are declared once (name, help, for histograms the bucket bounds) and
// then updated from any thread: inc() and observe() take a short lock. Names follow Prometheus
// conventions (sluice_ prefix, _total for counters, base units: seconds). Labels must come from
// bounded sets (providers from etc/providers.toml, configured sources and tenants, categories):
// callers map anything else to "". Gauges describe state that its owner holds (the queue
// manager's lanes and queues): their owner writes them at scrape time with Gauges, so idle keys
// leave with the state that made them.
//
// doc/metrics.md lists every metric.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::observe {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Appends one sample line: NAME{k="v",…} VALUE.
void append_sample(std::string& out, std::string_view name, const Labels& labels, double value);

// Gauge families written at scrape time: HELP and TYPE once per family, then its samples.
class Gauges {
 public:
  void family(std::string_view name, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value) {
    append_sample(text_, name, labels, value);
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

class Metrics {
 public:
  void counter(std::string name, std::string help);
  void histogram(std::string name, std::string help, std::vector<double> bounds);
  // Thread-safe. Unknown names are ignored (a metric declared nowhere is not exported).
  void inc(std::string_view name, const Labels& labels = {}, double by = 1);
  void observe(std::string_view name, double value, const Labels& labels = {});
  // Every declared family, in declaration order, with its samples.
  std::string render() const;

 private:
  struct Series {
    double value = 0;                  // counters
    std::vector<uint64_t> buckets;     // histograms: cumulative at render time
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    std::string name, help, type;
    std::vector<double> bounds;
    std::map<Labels, Series> series;
  };
  Family* find(std::string_view name);

  mutable std::mutex mu_;
  std::vector<Family> families_;
};

// sluice's own families (doc/metrics.md), declared by declare_metrics().
namespace metric {
inline constexpr std::string_view kReceived = "sluice_messages_received_total";
inline constexpr std::string_view kDelivered = "sluice_recipients_delivered_total";
inline constexpr std::string_view kDeferred = "sluice_recipients_deferred_total";
inline constexpr std::string_view kBounced = "sluice_recipients_bounced_total";
inline constexpr std::string_view kExpired = "sluice_recipients_expired_total";
inline constexpr std::string_view kSpoolSync = "sluice_spool_sync_duration_seconds";
inline constexpr std::string_view kDeliveryLatency = "sluice_delivery_latency_seconds";
}  // namespace metric
void declare_metrics(Metrics& m);

}  // namespace sluice::observe
