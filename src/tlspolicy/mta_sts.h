// MTA-STS (RFC 8461), the pure part: the `_mta-sts` TXT record, the policy file, and which MX
// hosts a policy allows. Fetching and caching are in policy_resolver.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::tlspolicy {

// The TXT record at _mta-sts.DOMAIN (RFC 8461 section 3.1): "v=STSv1; id=20160831085700Z;".
// nullopt when the record is not an STSv1 record or its id is malformed. Callers treat several
// STSv1 records as none (section 3.1: "senders … MUST assume … no policy").
std::optional<std::string> parse_sts_txt(std::string_view record);

struct StsPolicy {
  enum class Mode { kNone, kTesting, kEnforce };
  Mode mode = Mode::kNone;
  std::vector<std::string> mx;  // lower-case patterns: "mail.example.com", "*.example.net"
  uint32_t max_age = 0;         // seconds, at most 31557600
};

// The policy file (section 3.2): CRLF or LF lines of "key: value"; unknown keys ignored. An
// error message when a required field is missing or malformed.
struct StsParse {
  std::optional<StsPolicy> policy;
  std::string error;
};
StsParse parse_sts_policy(std::string_view text);

// Whether `host` (an MX host name) matches one of the policy's mx patterns (section 4.1): exact,
// or "*." standing for exactly one leftmost label. Case-insensitive, trailing dots ignored.
bool mx_allowed(const StsPolicy& policy, std::string_view host);

std::string_view mode_name(StsPolicy::Mode m);

}  // namespace sluice::tlspolicy
