// Provider rules: which receiving provider an MX host belongs to (gmail, microsoft, yahoo, …),
// so limits and classification can be shared across every domain that provider hosts.
//
// Data file (etc/providers.toml):
//   [[provider]]
//   name = "gmail"
//   mx = ["*.google.com", "*.googlemail.com"]   # exact names or "*." suffix patterns
//   postmaster = "https://…"                     # optional: its page for senders (reports)
// The first provider with a pattern matching any of a destination's MX hosts wins.
// Constant after load; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::dns {

class Providers {
 public:
  static Result<Providers> load(const std::string& path);
  static Result<Providers> parse(std::string_view toml_text, const std::string& name);

  // The provider of a set of MX host names, or "" when no rule matches.
  std::string match(const std::vector<std::string>& mx_hosts) const;
  size_t size() const { return rules_.size(); }
  // Provider name → its postmaster page, for those that have one.
  std::map<std::string, std::string> postmaster_pages() const;

 private:
  struct Rule {
    std::string name;
    std::vector<std::string> patterns;  // lower-case
    std::string postmaster;              // "" when none
  };
  std::vector<Rule> rules_;
};

}  // namespace sluice::dns
