// The deliverability report's second half: concrete actions derived from what the log shows,
// each with the evidence that led to it (doc/report.md lists the rules and their thresholds).
// Pure: the same analysis and context give the same recommendations, in a stable order (most
// severe first, then by provider).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "report/analysis.h"

namespace sluice::report {

// What the configuration adds to the log (all optional).
struct Context {
  std::map<std::string, std::string> postmaster;  // provider → its postmaster page
  std::set<std::string> warming;                  // sources with a warm-up schedule
  bool knows_warmup = false;                      // warming came from a configuration
};

struct Recommendation {
  std::string kind;      // lower-limit, lower-rate, raise-limit, spread-campaign, slow-warmup,
                         // move-tenant, fix-authentication, contact-postmaster, clean-list,
                         // fix-tls
  std::string provider;  // the group it is about (fix-tls: the recipient domain)
  int severity = 1;      // 3 act now, 2 soon, 1 worth a look
  std::string action;    // what to do, with the configuration to write where there is one
  std::string evidence;  // the numbers from the log behind it
};

std::vector<Recommendation> recommend(const Analysis& analysis, const Context& context);

// Thresholds: below these counts nothing is recommended (a handful of signals is noise).
inline constexpr uint64_t kMinSignals = 10;
inline constexpr double kMinShare = 0.02;  // of the group's attempts
inline constexpr uint64_t kMinBurst = 100;  // recipients: a smaller campaign is no burst

}  // namespace sluice::report
