#include "app/report_cmd.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "config/config.h"
#include "dns/providers.h"
#include "report/analysis.h"
#include "report/recommend.h"
#include "report/render.h"

namespace sluice {
namespace json = boost::json;
namespace {

// Progress on a terminal: "report: 43% of 2.1 GB" redrawn in place, at most every 1%.
class Progress {
 public:
  explicit Progress(uint64_t total) : total_(total), on_(total > 0 && isatty(STDERR_FILENO)) {}
  void at(uint64_t done) {
    if (!on_) return;
    const int pct = static_cast<int>(100 * done / total_);
    if (pct == shown_) return;
    shown_ = pct;
    const int width = 30, filled = pct * width / 100;
    std::fprintf(stderr, "\rreading [%s%s] %3d%% of %.1f MB", std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), pct,
                 static_cast<double>(total_) / 1e6);
  }
  ~Progress() {
    if (on_) std::fprintf(stderr, "\r%60s\r", "");
  }

 private:
  uint64_t total_;
  bool on_;
  int shown_ = -1;
};

report::Context context_of(const std::optional<config::Config>& cfg) {
  report::Context ctx;
  std::string providers = "etc/providers.toml";
  if (cfg) {
    providers = cfg->dns.providers;
    ctx.knows_warmup = true;
    for (const auto& [name, s] : cfg->egress.sources)
      if (!s.warmup.empty() && s.warmup != "none") ctx.warming.insert(name);
  }
  if (!providers.empty() && std::filesystem::exists(providers)) {
    if (auto p = dns::Providers::load(providers)) ctx.postmaster = p->postmaster_pages();
  }
  return ctx;
}

}  // namespace

int run_report(const ReportOptions& o) {
  std::optional<config::Config> cfg;
  if (!o.config.empty()) {
    auto loaded = config::load_config_file(o.config);
    if (!loaded) {
      for (const auto& e : loaded.error()) std::fprintf(stderr, "sluice: %s\n", e.str().c_str());
      return 78;
    }
    cfg = std::move(*loaded);
  }
  const report::Context ctx = context_of(cfg);
  std::vector<std::string> logs = o.logs.empty() ? std::vector<std::string>{"-"} : o.logs;
  uint64_t total = 0;
  for (const std::string& path : logs) {
    std::error_code ec;
    if (path != "-") total += std::filesystem::file_size(path, ec);
  }
  report::Analysis analysis;
  Progress progress(total);
  uint64_t done = 0, skipped = 0;
  json::parser parser;
  std::string line;
  for (const std::string& path : logs) {
    std::ifstream file;
    if (path != "-") {
      file.open(path, std::ios::binary);
      if (!file) {
        std::fprintf(stderr, "sluice report: cannot read %s\n", path.c_str());
        return 66;
      }
    }
    std::istream& in = path == "-" ? std::cin : file;
    while (std::getline(in, line)) {
      done += line.size() + 1;
      if ((done & 0xfffff) < line.size() + 1) progress.at(done);
      if (line.empty()) continue;
      parser.reset();
      json::error_code ec;
      parser.write(line, ec);
      if (ec) {
        ++skipped;
        continue;
      }
      const json::value v = parser.release();
      if (!v.is_object() || !analysis.add(v.get_object())) ++skipped;
    }
  }
  progress.at(total);
  if (skipped)
    std::fprintf(stderr, "sluice report: skipped %llu lines that are not log records\n",
                 static_cast<unsigned long long>(skipped));
  if (cfg) {
    // A group is a provider, or a site (MX hosts, or route:…) when no provider rule matched.
    for (const auto& [name, g] : analysis.providers()) {
      const bool site = name.find_first_of(".:,") != std::string::npos;
      const auto limits = cfg->shaping.limits_for(site ? "" : name, site ? name : "", "");
      analysis.set_configured_limit(name, std::to_string(limits.connection_limit));
    }
  }
  const std::vector<report::Recommendation> recs = report::recommend(analysis, ctx);
  const report::RenderOptions ro{o.domains};
  if (!o.html.empty()) {
    std::ofstream html(o.html, std::ios::binary | std::ios::trunc);
    html << report::render_html(analysis, recs, ro);
    if (!html.flush()) {
      std::fprintf(stderr, "sluice report: cannot write %s\n", o.html.c_str());
      return 73;
    }
  }
  const std::string out =
      o.json ? report::render_json(analysis, recs) : report::render_text(analysis, recs, ro);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace sluice
