// When messages are due: the scheduled queue (a min-heap of (due time, id): 16 bytes per
// deferred message, nothing else kept in memory — metadata is read back from the spool when the
// message is due) and the retry schedule (exponential backoff with jitter, capped, with expiry).
// Pure and single-threaded: the queue manager's strand owns them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
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

// Retry schedule: attempt n (1-based) waits min_backoff * 2^(n-1), at most max_backoff, times a
// jitter factor in [0.8, 1.2) from `unit_random` (a number in [0, 1)) so that messages deferred
// together do not come back together.
int64_t backoff_ms(const config::QueueConfig& q, uint32_t attempts, double unit_random);

// When a message that just failed transiently at `now_ms` is tried next, or nullopt when it has
// expired (older than max_age). The last attempt is never later than the expiry time.
std::optional<int64_t> next_attempt_ms(const config::QueueConfig& q, int64_t received_ms,
                                       uint32_t attempts, int64_t now_ms, double unit_random);

}  // namespace sluice::queue
