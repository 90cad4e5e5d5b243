// Address ranges ("127.0.0.0/8", "::1/128", "192.0.2.7") for relay policy.
// Pure values; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class Cidr {
 public:
  // "a.b.c.d/n", "v6/n", or a bare address (a /32 or /128). nullopt when malformed.
  static std::optional<Cidr> parse(std::string_view s);

  // `address` in text form ("127.0.0.1", "::1", "::ffff:127.0.0.1" matches IPv4 ranges).
  bool contains(std::string_view address) const;
  std::string str() const { return text_; }

 private:
  bool v6_ = false;
  std::array<uint8_t, 16> bytes_{};
  int prefix_ = 0;
  std::string text_;
};

// True when any range contains the address.
bool any_contains(const std::vector<Cidr>& ranges, std::string_view address);

}  // namespace sluice
