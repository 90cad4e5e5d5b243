// `sluice report LOG…`: the deliverability report from event logs (doc/report.md).
//   sluice report var/log/events.json [--json | --html report.html] [--config etc/sluice.toml]
// Streams the records (any size; a progress bar on stderr when it is a terminal), then prints
// per provider and domain what happened and the recommended actions with their evidence.
#pragma once

#include <string>
#include <vector>

namespace sluice {

struct ReportOptions {
  std::vector<std::string> logs;  // "-" = standard input
  bool json = false;              // JSON on stdout instead of the table
  std::string html;               // also write a self-contained HTML report here
  std::string config;             // postmaster pages, warm-up sources ("" = etc/providers.toml if any)
  size_t domains = 20;            // domains shown in the table
};

// 0 on success; 66 when a log cannot be read; 78 for a bad configuration. Lines that are not
// JSON records are skipped and counted on stderr.
int run_report(const ReportOptions& options);

}  // namespace sluice
