// Throttling of failed SMTP AUTH per client address: password guessing gets a few tries, then
// the address is refused AUTH until its window ends (Postfix's smtpd_client_auth_rate_limit, by
// failures rather than attempts, so that honest clients are never slowed).
//
// A window opens at an address's first failure and lasts `window`; `max_failures` failures in it
// lock the address out for the rest of it. A success forgets the address. The table holds at
// most `max_addresses` entries: expired ones go first, then the oldest windows, so a flood of
// addresses bounds memory (and, at worst, gives the oldest guessers a fresh start).
// Time is passed in (tests inject it). Thread-safe: sessions on every thread share one.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sluice::inbound {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  AuthThrottle(uint32_t max_failures, std::chrono::milliseconds window,
               size_t max_addresses = 100'000);

  // Whether `ip` may try AUTH at `now`.
  bool allowed(const std::string& ip, Clock::time_point now);
  // Records a failed AUTH from `ip`; returns true when this failure locks it out.
  bool failed(const std::string& ip, Clock::time_point now);
  void succeeded(const std::string& ip);

  size_t tracked() const;

 private:
  struct Entry {
    Clock::time_point window_start;
    uint32_t failures = 0;
  };
  void make_room(Clock::time_point now);  // mu_ held

  const uint32_t max_failures_;
  const std::chrono::milliseconds window_;
  const size_t max_addresses_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace sluice::inbound
