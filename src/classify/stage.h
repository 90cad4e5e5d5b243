// The stage of an SMTP delivery a reply came at. Shared by the SMTP client (which records it),
// the classifier (whose rules match on it) and the logs (stage_name).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::classify {

enum class Stage : uint8_t {
  kDns,
  kConnect,
  kBanner,
  kEhlo,
  kStartTls,
  kMail,
  kRcpt,
  kData,
  kEndOfData,
  kUnknown,  // a reply pasted without its context (sluice classify): stage conditions fail
};
inline constexpr Stage kAllStages[] = {Stage::kDns,  Stage::kConnect,  Stage::kBanner,
                                       Stage::kEhlo, Stage::kStartTls, Stage::kMail,
                                       Stage::kRcpt, Stage::kData,     Stage::kEndOfData};

// "dns", "connect", "banner", "ehlo", "starttls", "mail", "rcpt", "data", "end-of-data",
// "unknown".
std::string_view stage_name(Stage s);
std::optional<Stage> parse_stage(std::string_view s);

}  // namespace sluice::classify
