#include "queue/cadence.h"

#include <algorithm>

namespace sluice::queue {

void Cadence::restore(const std::string& campaign, int64_t start_ms) {
  State& s = states_[campaign];
  if (s.start_ms == 0) s.start_ms = start_ms;
}

int64_t Cadence::hold(const std::string& campaign, spool::MessageId id, int64_t now) {
  const config::Campaign& c = campaigns_.at(campaign);
  State& s = states_[campaign];
  int64_t opened = 0;
  const int64_t window = c.window.count();
  if (window > 0 && s.waiting.empty() && (s.start_ms == 0 || now >= s.start_ms + window)) {
    s.start_ms = now;  // a new window
    s.last_release_ms.reset();
    opened = now;
  }
  s.waiting.push_back(id);
  return opened;
}

int64_t Cadence::due(const config::Campaign& c, const State& s) const {
  if (!s.last_release_ms) return 0;
  const int64_t last = *s.last_release_ms;
  if (c.rate.limited()) return last + static_cast<int64_t>(1000.0 / c.rate.per_second());
  // What waits is spread evenly over what is left of the window; past its end, all goes.
  const int64_t end = s.start_ms + c.window.count();
  if (end <= last) return last;
  return last + (end - last) / static_cast<int64_t>(s.waiting.size() + 1);
}

std::optional<int64_t> Cadence::next_release() const {
  std::optional<int64_t> out;
  for (const auto& [name, s] : states_) {
    if (s.waiting.empty()) continue;
    const int64_t at = due(campaigns_.at(name), s);
    if (!out || at < *out) out = at;
  }
  return out;
}

std::vector<spool::MessageId> Cadence::release(int64_t now) {
  std::vector<spool::MessageId> out;
  for (auto& [name, s] : states_) {
    const config::Campaign& c = campaigns_.at(name);
    // Bounded by what waits; each release moves the next due time on.
    while (!s.waiting.empty()) {
      const int64_t at = due(c, s);
      if (at > now) break;
      out.push_back(s.waiting.front());
      s.waiting.pop_front();
      // The schedule, not the moment the timer fired: a late timer does not shift the rest.
      s.last_release_ms = at == 0 ? now : at;
    }
  }
  return out;
}

size_t Cadence::waiting() const {
  size_t n = 0;
  for (const auto& [name, s] : states_) n += s.waiting.size();
  return n;
}

}  // namespace sluice::queue
