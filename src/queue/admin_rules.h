// Operators' rules over the queue (the admin API: /api/admin/suspend/v1, /api/admin/bounce/v1,
// in KumoMTA's manner): a suspension holds matching mail until it ends or is cancelled; a
// bounce refuses matching mail for good (a DSN to the sender), queued and, for its duration,
// new; a rebind sends matching mail through another pool. Selectors: recipient domain, site,
// tenant, campaign (those given must all match; at least one). A site selector matches once the
// domain is resolved. (A suspension by egress source is not a rule over mail: the dispatcher
// suspends the source's lanes.)
// Pure, on the time given (admin_rules_test.cpp); the queue manager's strand owns them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "spool/envelope.h"

namespace sluice::queue {

struct AdminRule {
  enum class Kind : uint8_t { kSuspend, kBounce, kRebind };
  uint64_t id = 0;
  Kind kind = Kind::kSuspend;
  std::string domain, site, tenant, campaign;  // "" = any
  std::string source;  // kSuspend alone: the egress source whose lanes are held (matches no mail)
  std::string pool;                            // kRebind: the pool matching mail goes through
  std::string reason;
  int64_t created_ms = 0;
  int64_t until_ms = 0;  // the rule ends then
  uint64_t affected = 0;  // recipients it held or bounced
  // `site` "" while the domain is not resolved: a rule with a site selector does not match yet.
  bool matches(const spool::MessageMeta& m, const std::string& domain,
               const std::string& site = {}) const;
};

class AdminRules {
 public:
  // The new rule's id; nullopt when it selects nothing (no selector).
  std::optional<uint64_t> add(AdminRule rule);
  // The rule, removed; nullopt when there is none with that id.
  std::optional<AdminRule> remove(uint64_t id);
  // The first suspension or bounce in force that matches, bounces before suspensions.
  AdminRule* match(const spool::MessageMeta& m, const std::string& domain, int64_t now_ms,
                   const std::string& site = {});
  // The newest rebind in force that matches.
  const AdminRule* rebind(const spool::MessageMeta& m, const std::string& domain,
                          const std::string& site, int64_t now_ms) const;
  // Rules still in force (expired ones are dropped).
  std::vector<AdminRule> list(AdminRule::Kind kind, int64_t now_ms);

 private:
  std::vector<AdminRule> rules_;
  uint64_t next_id_ = 1;
};

}  // namespace sluice::queue
