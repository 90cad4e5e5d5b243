#include "queue/admin_rules.h"

#include <algorithm>

namespace sluice::queue {

bool AdminRule::matches(const spool::MessageMeta& m, const std::string& d) const {
  return (domain.empty() || domain == d) && (tenant.empty() || tenant == m.tenant) &&
         (campaign.empty() || campaign == m.campaign);
}

std::optional<uint64_t> AdminRules::add(AdminRule rule) {
  if (rule.domain.empty() && rule.tenant.empty() && rule.campaign.empty()) return std::nullopt;
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

AdminRule* AdminRules::match(const spool::MessageMeta& m, const std::string& domain, int64_t now) {
  AdminRule* found = nullptr;
  for (auto& r : rules_) {
    if (now >= r.until_ms || !r.matches(m, domain)) continue;
    if (r.kind == AdminRule::Kind::kBounce) return &r;
    if (!found) found = &r;
  }
  return found;
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
