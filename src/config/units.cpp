#include "config/units.h"

#include "core/text.h"

namespace sluice::config {
namespace {

// Splits the leading digits from the unit that follows them.
bool split_number(std::string_view& s, uint64_t& number, std::string_view& unit) {
  size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  auto v = parse_u64(s.substr(0, n));
  if (!v) return false;
  number = *v;
  s.remove_prefix(n);
  size_t u = 0;
  while (u < s.size() && is_alpha(s[u])) ++u;
  unit = s.substr(0, u);
  s.remove_prefix(u);
  return true;
}

bool checked_mul_add(uint64_t& acc, uint64_t number, uint64_t scale) {
  if (scale != 0 && number > (UINT64_MAX - acc) / scale) return false;
  acc += number * scale;
  return true;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  uint64_t total_ms = 0;
  while (!s.empty()) {
    uint64_t number = 0;
    std::string_view unit;
    if (!split_number(s, number, unit)) return std::nullopt;
    uint64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else
      return std::nullopt;
    if (!checked_mul_add(total_ms, number, scale)) return std::nullopt;
  }
  if (total_ms > uint64_t(INT64_MAX)) return std::nullopt;
  return Duration(int64_t(total_ms));
}

std::optional<uint64_t> parse_size(std::string_view s) {
  s = trim(s);
  uint64_t number = 0;
  std::string_view unit;
  if (!split_number(s, number, unit) || !trim(s).empty()) return std::nullopt;
  const std::string u = to_upper(unit);
  uint64_t scale = 0;
  if (u.empty() || u == "B")
    scale = 1;
  else if (u == "KB")
    scale = 1000;
  else if (u == "MB")
    scale = 1000ULL * 1000;
  else if (u == "GB")
    scale = 1000ULL * 1000 * 1000;
  else if (u == "KIB")
    scale = 1024;
  else if (u == "MIB")
    scale = 1024ULL * 1024;
  else if (u == "GIB")
    scale = 1024ULL * 1024 * 1024;
  else
    return std::nullopt;
  uint64_t total = 0;
  if (!checked_mul_add(total, number, scale)) return std::nullopt;
  return total;
}

std::string format_duration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  struct Unit {
    int64_t scale;
    const char* name;
  };
  for (const Unit u : {Unit{86'400'000, "d"}, Unit{3'600'000, "h"}, Unit{60'000, "m"},
                       Unit{1000, "s"}, Unit{1, "ms"}}) {
    if (ms >= u.scale) {
      out += std::to_string(ms / u.scale) + u.name;
      ms %= u.scale;
    }
  }
  return out;
}

std::optional<std::string> parse_rate(std::string_view s, Rate& out) {
  const size_t slash = s.find('/');
  auto n = parse_u64(s.substr(0, slash));
  if (slash == std::string_view::npos || !n || *n > 1'000'000)
    return "expected a rate such as \"100/s\", \"600/m\" or \"0/s\"";
  const std::string_view unit = s.substr(slash + 1);
  Duration per{0};
  if (unit == "s")
    per = Duration(1000);
  else if (unit == "m")
    per = Duration(60'000);
  else if (unit == "h")
    per = Duration(3'600'000);
  else
    return "the rate's unit is s, m or h";
  out = Rate{static_cast<uint32_t>(*n), per};
  return std::nullopt;
}

}  // namespace sluice::config
