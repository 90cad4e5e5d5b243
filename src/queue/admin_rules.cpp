#include "queue/admin_rules.h"

#include <algorithm>

namespace sluice::queue {

bool AdminRule::matches(const spool::MessageMeta& m, const std::string& d,
                        const std::string& s) const {
  if (!source.empty()) return false;  // a source's suspension holds lanes, not mail
  return (domain.empty() || domain == d) && (site.empty() || site == s) &&
         (tenant.empty() || tenant == m.tenant) && (campaign.empty() || campaign == m.campaign);
}

std::optional<uint64_t> AdminRules::add(AdminRule rule) {
  if (rule.domain.empty() && rule.site.empty() && rule.source.empty() && rule.tenant.empty() &&
      rule.campaign.empty())
    return std::nullopt;
  rule.id = next_id_++;
  rules_.push_back(std::move(rule));
  return rules_.back().id;
}

std::optional<AdminRule> AdminRules::remove(uint64_t id) {
  auto it = std::find_if(rules_.begin(), rules_.end(), [&](const AdminRule& r) { return r.id == id; });
  if (it == rules_.end()) return std::nullopt;
  AdminRule out = std::move(*it);
  rules_.erase(it);
  return out;
}

AdminRule* AdminRules::match(const spool::MessageMeta& m, const std::string& domain, int64_t now,
                             const std::string& site) {
  AdminRule* found = nullptr;
  for (auto& r : rules_) {
    if (r.kind == AdminRule::Kind::kRebind || now >= r.until_ms || !r.matches(m, domain, site))
      continue;
    if (r.kind == AdminRule::Kind::kBounce) return &r;
    if (!found) found = &r;
  }
  return found;
}

const AdminRule* AdminRules::rebind(const spool::MessageMeta& m, const std::string& domain,
                                    const std::string& site, int64_t now) const {
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (it->kind == AdminRule::Kind::kRebind && now < it->until_ms && it->matches(m, domain, site))
      return &*it;
  }
  return nullptr;
}

std::vector<AdminRule> AdminRules::list(AdminRule::Kind kind, int64_t now) {
  std::erase_if(rules_, [&](const AdminRule& r) { return now >= r.until_ms; });
  std::vector<AdminRule> out;
  for (const auto& r : rules_) {
    if (r.kind == kind) out.push_back(r);
  }
  return out;
}

}  // namespace sluice::queue
