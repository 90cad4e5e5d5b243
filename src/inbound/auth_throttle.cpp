#include "inbound/auth_throttle.h"

#include <algorithm>

namespace sluice::inbound {

AuthThrottle::AuthThrottle(uint32_t max_failures, std::chrono::milliseconds window,
                           size_t max_addresses)
    : max_failures_(max_failures), window_(window), max_addresses_(std::max<size_t>(1, max_addresses)) {}

bool AuthThrottle::allowed(const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(ip);
  if (it == entries_.end()) return true;
  if (now - it->second.window_start >= window_) {
    entries_.erase(it);
    return true;
  }
  return it->second.failures < max_failures_;
}

bool AuthThrottle::failed(const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(ip);
  if (it != entries_.end() && now - it->second.window_start >= window_) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    if (entries_.size() >= max_addresses_) make_room(now);
    it = entries_.emplace(ip, Entry{now, 0}).first;
  }
  return ++it->second.failures == max_failures_;
}

void AuthThrottle::succeeded(const std::string& ip) {
  std::lock_guard lock(mu_);
  entries_.erase(ip);
}

size_t AuthThrottle::tracked() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void AuthThrottle::make_room(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& e) { return now - e.second.window_start >= window_; });
  if (entries_.size() < max_addresses_) return;
  auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
    return a.second.window_start < b.second.window_start;
  });
  entries_.erase(oldest);
}

}  // namespace sluice::inbound
