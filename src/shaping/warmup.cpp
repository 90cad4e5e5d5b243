#include "shaping/warmup.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace sluice::shaping {

uint32_t Warmup::day(int64_t now) const {
  return static_cast<uint32_t>(std::max<int64_t>(0, now / kDayMs - start_day_) + 1);
}

const config::WarmupCaps& Warmup::caps_for(std::string_view provider) const {
  auto it = schedule_.providers.find(std::string(provider));
  return it == schedule_.providers.end() ? schedule_.caps : it->second;
}

bool Warmup::warmed(int64_t now) const {
  size_t days = schedule_.caps.daily.size();
  for (const auto& [name, caps] : schedule_.providers) days = std::max(days, caps.daily.size());
  return day(now) > days;
}

Warmup::Caps Warmup::caps(std::string_view provider, int64_t now) const {
  const config::WarmupCaps& c = caps_for(provider);
  const size_t d = day(now) - 1;
  Caps out;
  if (d >= c.daily.size()) return out;  // warmed up for this provider
  out.daily = c.daily[d];
  out.hourly = d < c.hourly.size() ? c.hourly[d] : std::max<uint64_t>(1, (out.daily + 9) / 10);
  return out;
}

Warmup::Count Warmup::counted(std::string_view provider, int64_t now) const {
  Count c;
  c.day = now / kDayMs;
  c.hour = now / kHourMs;
  auto it = counts_.find(std::string(provider));
  if (it == counts_.end() || it->second.day != c.day) return c;
  c.today = it->second.today;
  if (it->second.hour == c.hour) c.this_hour = it->second.this_hour;
  return c;
}

int64_t Warmup::wait(std::string_view provider, int64_t now) const {
  const Caps cap = caps(provider, now);
  const Count c = counted(provider, now);
  if (cap.daily && c.today >= cap.daily) return (c.day + 1) * kDayMs - now;
  if (cap.hourly && c.this_hour >= cap.hourly) return (c.hour + 1) * kHourMs - now;
  return 0;
}

void Warmup::count(std::string_view provider, int64_t now) {
  Count c = counted(provider, now);
  ++c.today;
  ++c.this_hour;
  counts_[std::string(provider)] = c;
}

std::string Warmup::encode() const {
  std::string out = std::to_string(start_day_);
  for (const auto& [provider, c] : counts_) {
    out += ";" + provider + ":" + std::to_string(c.day) + ":" + std::to_string(c.hour) + ":" +
           std::to_string(c.today) + ":" + std::to_string(c.this_hour);
  }
  return out;
}

bool Warmup::restore(std::string_view s, bool keep_start) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t semi = std::min(s.find(';', pos), s.size());
    parts.emplace_back(s.substr(pos, semi - pos));
    pos = semi + 1;
  }
  char* end = nullptr;
  const long long start = std::strtoll(parts[0].c_str(), &end, 10);
  if (parts[0].empty() || *end) return false;
  std::map<std::string, Count> counts;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    const size_t colon = p.find(':');
    if (colon == std::string::npos) return false;
    Count c;
    unsigned long long today = 0, hour_count = 0;
    long long day = 0, hour = 0;
    if (std::sscanf(p.c_str() + colon + 1, "%lld:%lld:%llu:%llu", &day, &hour, &today,
                    &hour_count) != 4)
      return false;
    c.day = day;
    c.hour = hour;
    c.today = today;
    c.this_hour = hour_count;
    counts[p.substr(0, colon)] = c;
  }
  if (!keep_start) start_day_ = start;
  counts_ = std::move(counts);
  return true;
}

}  // namespace sluice::shaping
