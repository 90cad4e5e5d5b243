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

}  // namespace sluice::config
