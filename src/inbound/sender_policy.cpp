#include "inbound/sender_policy.h"

#include "core/text.h"

namespace sluice::inbound {

namespace {

bool matches(std::string_view pattern, std::string_view sender) {
  if (pattern == "*") return true;
  if (pattern.front() == '@') {
    const size_t at = sender.rfind('@');
    return at != std::string_view::npos && iequals(sender.substr(at), pattern);
  }
  return iequals(pattern, sender);
}

}  // namespace

bool may_send_as(const SenderLogins& table, std::string_view login, std::string_view sender) {
  if (table.empty() || sender.empty()) return true;
  auto it = table.find(std::string(login));
  if (it == table.end()) it = table.find("*");
  if (it == table.end()) return false;
  for (const auto& p : it->second) {
    if (matches(p, sender)) return true;
  }
  return false;
}

}  // namespace sluice::inbound
