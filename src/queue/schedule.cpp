#include "queue/schedule.h"

#include <algorithm>
#include <cmath>

namespace sluice::queue {

std::optional<spool::MessageId> ScheduledQueue::pop_due(int64_t now_ms) {
  if (heap_.empty() || heap_.top().due_ms > now_ms) return std::nullopt;
  const auto id = heap_.top().id;
  heap_.pop();
  return id;
}

size_t ScheduledQueue::capacity_bytes() const {
  return heap_.capacity() * sizeof(Entry);
}

int64_t backoff_ms(const config::QueueConfig& q, uint32_t attempts, double unit_random) {
  const double base = static_cast<double>(q.min_backoff.count());
  const double cap = static_cast<double>(q.max_backoff.count());
  const double exp =
      std::ldexp(base, static_cast<int>(std::min<uint32_t>(attempts ? attempts - 1 : 0, 40)));
  const double jitter = 0.8 + 0.4 * std::clamp(unit_random, 0.0, 1.0);
  return static_cast<int64_t>(std::min(exp, cap) * jitter);
}

std::optional<int64_t> next_attempt_ms(const config::QueueConfig& q, int64_t received_ms,
                                       uint32_t attempts, int64_t now_ms, double unit_random) {
  const int64_t expires = received_ms + q.max_age.count();
  if (now_ms >= expires) return std::nullopt;
  return std::min(now_ms + backoff_ms(q, attempts, unit_random), expires);
}

}  // namespace sluice::queue
