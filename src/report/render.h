// The deliverability report's output: a terminal table, JSON, and one self-contained HTML file
// (inline SVG charts, no script, nothing fetched), all from the same analysis and
// recommendations. doc/report.md describes the JSON's fields.
#pragma once

#include <string>
#include <vector>

#include "report/analysis.h"
#include "report/recommend.h"

namespace sluice::report {

struct RenderOptions {
  size_t max_domains = 20;  // the domains with the most recipients; the JSON has all of them
};

std::string render_text(const Analysis& a, const std::vector<Recommendation>& recs,
                        const RenderOptions& o);
std::string render_json(const Analysis& a, const std::vector<Recommendation>& recs);
std::string render_html(const Analysis& a, const std::vector<Recommendation>& recs,
                        const RenderOptions& o);

// The time buckets a timeline uses: at most 60 over the log's span, whole minutes.
struct Timeline {
  int64_t start_minute = 0;  // epoch minutes
  int64_t minutes = 1;       // per bucket
  size_t buckets = 0;
  // Per category (kCategories order), counts per bucket.
  std::vector<std::vector<uint64_t>> series;
};
Timeline timeline(const Analysis& a, const Group& g);

}  // namespace sluice::report
