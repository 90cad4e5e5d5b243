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

std::vector<std::pair<int64_t, spool::MessageId>> ScheduledQueue::drain() {
  std::vector<std::pair<int64_t, spool::MessageId>> out;
  out.reserve(heap_.size());
  while (!heap_.empty()) {
    out.emplace_back(heap_.top().due_ms, heap_.top().id);
    heap_.pop();
  }
  return out;
}

size_t ScheduledQueue::capacity_bytes() const {
  return heap_.capacity() * sizeof(Entry);
}

bool FairSchedule::may_start(const std::string& tenant) const {
  auto it = in_flight_.find(tenant);
  return it == in_flight_.end() || it->second < tenant_cap_;
}

std::optional<int64_t> FairSchedule::next_due() const {
  std::optional<int64_t> out;
  for (const auto& [tenant, heap] : heaps_) {
    const auto due = heap.next_due();
    if (due && may_start(tenant) && (!out || *due < *out)) out = due;
  }
  return out;
}

std::optional<std::pair<spool::MessageId, std::string>> FairSchedule::pop_due(int64_t now_ms) {
  if (heaps_.empty()) return std::nullopt;
  // Priority tenants first; then tenants after the one served last, then from the beginning,
  // each once per pass.
  for (int pass = priority_.empty() ? 1 : 0; pass < 2; ++pass) {
    auto start = heaps_.upper_bound(turn_);
    for (size_t n = 0, total = heaps_.size(); n < total; ++n) {
      if (start == heaps_.end()) start = heaps_.begin();
      auto it = start++;
      if (pass == 0 && !priority_.count(it->first)) continue;
      if (!may_start(it->first)) continue;
    if (auto id = it->second.pop_due(now_ms)) {
      --size_;
      turn_ = it->first;
      std::pair<spool::MessageId, std::string> out{*id, it->first};
      if (it->second.size() == 0) heaps_.erase(it);
      return out;
    }
    }
  }
  return std::nullopt;
}

void FairSchedule::finished(const std::string& tenant) {
  auto it = in_flight_.find(tenant);
  if (it == in_flight_.end()) return;
  if (--it->second == 0) in_flight_.erase(it);
}

std::vector<FairSchedule::Entry> FairSchedule::drain() {
  std::vector<Entry> out;
  for (auto& [tenant, heap] : heaps_) {
    for (const auto& [due, id] : heap.drain()) out.push_back(Entry{tenant, due, id});
  }
  heaps_.clear();
  size_ = 0;
  return out;
}

size_t FairSchedule::capacity_bytes() const {
  size_t n = 0;
  for (const auto& [tenant, heap] : heaps_) n += heap.capacity_bytes();
  return n;
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
