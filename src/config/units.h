// Human units in configuration: durations ("30s", "5m", "1h30m", "250ms", "2d") and sizes
// ("50MB", "512KiB", "1048576"). Sizes use SI multiples for KB/MB/GB (1000) and binary for
// KiB/MiB/GiB (1024). Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::config {

using Duration = std::chrono::milliseconds;

std::optional<Duration> parse_duration(std::string_view s);
std::optional<uint64_t> parse_size(std::string_view s);

// The shortest exact spelling: 90000ms -> "1m30s".
std::string format_duration(Duration d);

// "100/s", "600/m", "36000/h"; count 0 means no limit.
struct Rate {
  uint32_t count = 0;
  Duration per{1000};
  bool limited() const { return count > 0; }
  double per_second() const { return count * 1000.0 / static_cast<double>(per.count()); }
  friend bool operator==(const Rate&, const Rate&) = default;
};
// Parses a Rate; an error message or nullopt (the Section::parsed signature).
std::optional<std::string> parse_rate(std::string_view s, Rate& out);

}  // namespace sluice::config
