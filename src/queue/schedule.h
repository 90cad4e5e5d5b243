// When messages are due: the scheduled queue (a min-heap of (due time, id): 16 bytes per
// deferred message, nothing else kept in memory — metadata is read back from the spool when the
// message is due) and the retry schedule (exponential backoff with jitter, capped, with expiry).
// Pure and single-threaded: the queue manager's strand owns them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "spool/envelope.h"

namespace sluice::queue {

class ScheduledQueue {
 public:
  void push(int64_t due_ms, spool::MessageId id) { heap_.push({due_ms, id}); }
  // The earliest due time, if any.
  std::optional<int64_t> next_due() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.top().due_ms;
  }
  // Removes and returns the earliest message if it is due at `now_ms`.
  std::optional<spool::MessageId> pop_due(int64_t now_ms);
  size_t size() const { return heap_.size(); }
  // Removes and returns every entry (due, id), in no particular order.
  std::vector<std::pair<int64_t, spool::MessageId>> drain();
  // Memory the heap holds, for the million-message benchmark.
  size_t capacity_bytes() const;

 private:
  struct Entry {
    int64_t due_ms;
    spool::MessageId id;
    bool operator>(const Entry& o) const { return due_ms > o.due_ms; }
  };
  struct Heap : std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> {
    size_t capacity() const { return c.capacity(); }
  };
  Heap heap_;
};

// The scheduled queue split by tenant and served in turn, with the messages each tenant has in
// flight: a tenant at its cap starts nothing more until one of its messages settles, so that
// one tenant's blast cannot fill every in-flight slot, and a quiet tenant's due message is
// started next, not after the blaster's backlog. Tenants are the configured ones ("" for all
// others), so the number of heaps is bounded by the configuration.
class FairSchedule {
 public:
  // At most `tenant_cap` messages of one tenant in flight (the queue manager: three quarters
  // of max_in_flight when tenants are configured).
  // `priority`: tenants whose due messages start before any other's (transactional mail).
  explicit FairSchedule(size_t tenant_cap, std::set<std::string> priority = {})
      : tenant_cap_(tenant_cap), priority_(std::move(priority)) {}

  void push(const std::string& tenant, int64_t due_ms, spool::MessageId id) {
    heaps_[tenant].push(due_ms, id);
    ++size_;
  }
  bool may_start(const std::string& tenant) const;
  // The earliest due time among tenants that may start a message.
  std::optional<int64_t> next_due() const;
  // The next due message of the tenant after the one served last that may start one, with its
  // tenant; nullopt when none is due.
  std::optional<std::pair<spool::MessageId, std::string>> pop_due(int64_t now_ms);
  void started(const std::string& tenant) { ++in_flight_[tenant]; }
  void finished(const std::string& tenant);
  size_t size() const { return size_; }
  size_t capacity_bytes() const;
  struct Entry {
    std::string tenant;
    int64_t due_ms;
    spool::MessageId id;
  };
  // Removes and returns every scheduled message (admin sweeps; they are pushed back as needed).
  std::vector<Entry> drain();

 private:
  std::map<std::string, ScheduledQueue> heaps_;
  std::map<std::string, size_t> in_flight_;
  std::string turn_;  // the tenant served last
  size_t tenant_cap_;
  std::set<std::string> priority_;
  size_t size_ = 0;
};

// Retry schedule: attempt n (1-based) waits min_backoff * 2^(n-1), at most max_backoff, times a
// jitter factor in [0.8, 1.2) from `unit_random` (a number in [0, 1)) so that messages deferred
// together do not come back together.
int64_t backoff_ms(const config::QueueConfig& q, uint32_t attempts, double unit_random);

// When a message that just failed transiently at `now_ms` is tried next, or nullopt when it has
// expired (older than max_age). The last attempt is never later than the expiry time.
std::optional<int64_t> next_attempt_ms(const config::QueueConfig& q, int64_t received_ms,
                                       uint32_t attempts, int64_t now_ms, double unit_random);

}  // namespace sluice::queue
