// The dispatcher's side of operators' actions (the admin API, doc/http.md): run-time limit
// overrides over the configured limits, suspensions of an egress source, and a reload's new
// limits. Both act on lanes
// in memory and on lanes made later; neither is written to the spool (a restart forgets them,
// as it forgets the admin API's other rules).
#include "queue/dispatcher.h"

#include <algorithm>

namespace sluice::queue {

bool LimitOverride::matches(std::string_view p, std::string_view s, std::string_view src) const {
  return (provider.empty() || provider == p) && (site.empty() || site == s) &&
         (source.empty() || source == src);
}

bool LimitOverride::matches(const Lane& lane) const {
  return lane.site && matches(lane.site->dest.provider, lane.site->name, lane.source);
}

config::ShapingLimits Dispatcher::lane_limits(const SiteState& site,
                                              const config::EgressSource& src,
                                              const std::string& domain) const {
  config::ShapingLimits limits = options_.shaping.limits_for(site.dest.provider, site.name, domain);
  src.limits.apply_to(limits);  // the source's own, over the site's
  for (const LimitOverride& o : overrides_)
    if (o.matches(site.dest.provider, site.name, src.name)) o.limits.apply_to(limits);
  return limits;
}

void Dispatcher::apply_overrides() {
  for (auto& [name, site] : sites_) {
    const std::string domain = site->domains.empty() ? std::string() : site->domains.front();
    for (auto& [source, lane] : site->lanes) {
      auto src = options_.egress.sources.find(source);
      if (src == options_.egress.sources.end()) continue;
      lane->ctl->set_limits(lane_limits(*site, src->second, domain));
    }
    reopen(*site);  // a higher limit may open connections now
  }
}

void Dispatcher::set_shaping(config::ShapingConfig shaping) {
  options_.shaping = std::move(shaping);
  apply_overrides();
}

size_t Dispatcher::add_override(LimitOverride& o) {
  o.id = next_override_++;
  overrides_.push_back(o);
  size_t changed = 0;
  for (const auto& [key, lane] : lanes_) changed += o.matches(*lane);
  apply_overrides();
  return changed;
}

std::optional<LimitOverride> Dispatcher::remove_override(uint64_t id) {
  auto it = std::find_if(overrides_.begin(), overrides_.end(),
                         [&](const LimitOverride& o) { return o.id == id; });
  if (it == overrides_.end()) return std::nullopt;
  LimitOverride out = std::move(*it);
  overrides_.erase(it);
  apply_overrides();
  return out;
}

std::vector<LimitOverride> Dispatcher::overrides() {
  expire_overrides(now_ms_());
  return overrides_;
}

void Dispatcher::expire_overrides(int64_t now) {
  const size_t before = overrides_.size();
  std::erase_if(overrides_, [&](const LimitOverride& o) { return now >= o.until_ms; });
  if (overrides_.size() != before) apply_overrides();
}

size_t Dispatcher::suspend_source(const std::string& source, int64_t until_ms,
                                  const std::string& reason) {
  const int64_t now = now_ms_();
  if (until_ms > now)
    source_holds_[source] = {until_ms, reason};
  else
    source_holds_.erase(source);
  size_t held = 0;
  std::vector<SiteState*> touched;
  for (auto& [key, lane] : lanes_) {
    if (lane->source != source) continue;
    lane->ctl->suspend_by_operator(until_ms > now ? until_ms : now, reason);
    ++held;
    if (lane->site) touched.push_back(lane->site);
  }
  // Their queues go to the pool's other sources, or park; a lifted suspension opens again.
  for (SiteState* s : touched) reopen(*s);
  return held;
}

const SiteState* Dispatcher::site_of_domain(const std::string& domain) const {
  for (const auto& [name, site] : sites_) {
    if (std::find(site->domains.begin(), site->domains.end(), domain) != site->domains.end())
      return site.get();
  }
  return nullptr;
}

}  // namespace sluice::queue
