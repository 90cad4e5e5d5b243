#include "core/cidr.h"

#include <arpa/inet.h>

#include <cstring>

#include "core/text.h"

namespace sluice {
namespace {

// Parses an address; IPv4-mapped IPv6 addresses become IPv4.
bool parse_address(std::string_view s, bool& v6, std::array<uint8_t, 16>& out) {
  const std::string text(s);
  out.fill(0);
  if (inet_pton(AF_INET, text.c_str(), out.data()) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out.data()) == 1) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out.data(), kMapped, 12) == 0) {
      std::memmove(out.data(), out.data() + 12, 4);
      std::memset(out.data() + 4, 0, 12);
      v6 = false;
    } else {
      v6 = true;
    }
    return true;
  }
  return false;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view s) {
  Cidr c;
  c.text_ = std::string(s);
  const size_t slash = s.find('/');
  if (!parse_address(s.substr(0, slash), c.v6_, c.bytes_)) return std::nullopt;
  const int max = c.v6_ ? 128 : 32;
  c.prefix_ = max;
  if (slash != std::string_view::npos) {
    auto p = parse_u64(s.substr(slash + 1));
    if (!p || *p > uint64_t(max)) return std::nullopt;
    c.prefix_ = static_cast<int>(*p);
  }
  return c;
}

bool Cidr::contains(std::string_view address) const {
  bool v6 = false;
  std::array<uint8_t, 16> a{};
  if (!parse_address(address, v6, a) || v6 != v6_) return false;
  int bits = prefix_;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (bytes_[i] & mask)) return false;
  }
  return true;
}

bool any_contains(const std::vector<Cidr>& ranges, std::string_view address) {
  for (const auto& r : ranges) {
    if (r.contains(address)) return true;
  }
  return false;
}

}  // namespace sluice
