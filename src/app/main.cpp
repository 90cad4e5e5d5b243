// sluice — outbound mail transfer agent. The command line: one binary, one subcommand per job.
#include <CLI/CLI.hpp>
#include <string>

#include "app/auth_check_cmd.h"
#include "app/classify_cmd.h"
#include "app/queue_cmd.h"
#include "app/report_cmd.h"
#include "app/serve.h"
#include "app/sim.h"
#include "app/tools.h"
#include "app/version.h"

int main(int argc, char** argv) {
  CLI::App app{"sluice — an outbound MTA that learns and respects each receiver's limits"};
  app.set_version_flag(
      "--version", std::string("sluice ") + sluice::kVersion + " (commit " + sluice::kCommit + ")");
  app.require_subcommand(1);

  sluice::ServeOptions serve_options;
  CLI::App* serve = app.add_subcommand("serve", "Run the MTA: accept, spool and deliver mail");
  serve->add_option("-c,--config", serve_options.config_path, "Configuration file (TOML)")
      ->capture_default_str();
  serve->add_flag("--check-config", serve_options.check_only,
                  "Validate the configuration and exit (0 when valid, 78 when not)");

  std::string user;
  CLI::App* passwd = app.add_subcommand(
      "passwd", "Print a credentials-file line for USER; the password is read from stdin");
  passwd->add_option("user", user, "User name")->required();

  std::string spool_config = "etc/sluice.toml";
  CLI::App* spool = app.add_subcommand("spool", "Inspect the spool (read-only, server stopped)");
  spool->require_subcommand(1);
  CLI::App* ls = spool->add_subcommand("ls", "One JSON line per spooled message");
  ls->add_option("-c,--config", spool_config, "Configuration file (TOML)")->capture_default_str();

  std::string sim_config;
  CLI::App* sim = app.add_subcommand(
      "sim", "Run the receiver simulator: providers with per-IP limits, for tests and benchmarks");
  sim->add_option("-c,--config", sim_config, "Simulator configuration (TOML)")->required();

  sluice::ClassifyOptions co;
  CLI::App* classify = app.add_subcommand(
      "classify",
      "Classify SMTP replies as delivery does: category, soft/hard, action, the rule that matched");
  classify->add_option("reply", co.reply,
                       "One reply, e.g. \"421 4.7.0 Try again later\" (code and enhanced code "
                       "optional, log prefixes allowed); '-' or none: one reply per line on "
                       "stdin, optionally \"stage<TAB>reply\"");
  classify
      ->add_option("-s,--stage", co.stage,
                   "Stage of replies without one: dns connect banner ehlo starttls mail rcpt "
                   "data end-of-data unknown")
      ->capture_default_str();
  classify->add_option("-p,--provider", co.provider,
                       "Provider of the site (names from etc/providers.toml)");
  classify->add_flag("--others-open", co.others_open,
                     "Other connections to the site are open (an unexplained 421 at the banner "
                     "then means a connection limit)");
  classify->add_option("-r,--rules", co.rules,
                       "Rules file (default: the built-in etc/classify.toml and etc/phrases.toml)");
  classify->add_flag("--json", co.json, "One JSON object per reply");
  classify->add_flag("--evidence", co.evidence,
                     "With --json: what weighed in each verdict (phrases per category, the "
                     "word model's guess)")
      ->needs("--json");

  sluice::QueueOptions qo;
  std::string explain_id;
  CLI::App* queue = app.add_subcommand(
      "queue", "Look into a running server through its admin API ([http] listen)");
  queue->require_subcommand(1);
  queue->add_option("-c,--config", qo.config_path, "Configuration file (for [http] listen)")
      ->capture_default_str();
  queue->add_option("--http", qo.http, "Admin API address host:port (instead of the config's)");
  queue->add_flag("--json", qo.json, "Print the API's JSON");
  queue->add_option("--token", qo.token, "The admin API's bearer token (default: the config's [http] api_token)");
  CLI::App* sites = queue->add_subcommand(
      "sites", "Every site: limits configured and learned, connections, last signal, suspension");
  CLI::App* sources = queue->add_subcommand(
      "sources", "Every egress source: pools, warm-up day, today's counts and caps, limits");
  CLI::App* explain = queue->add_subcommand("explain", "Where one message is and why");
  // Operators' rules: suspend, bounce, rebind (by mail) and limit (by lane).
  constexpr int kRules = 4;
  sluice::RuleOptions rule_options[kRules];
  CLI::App* rules[kRules];
  const char* kinds[kRules] = {"suspend", "bounce", "rebind", "limit"};
  const char* helps[kRules] = {
      "Hold mail by domain, site, tenant or campaign, or a source's connections (--source); "
      "no selector: list; --cancel ID",
      "Bounce mail by domain, site, tenant or campaign (no selector: list; --cancel ID)",
      "Send mail by domain, site, tenant or campaign through --pool (no selector: list; "
      "--cancel ID)",
      "Override limits at run time by provider, site or source (no selector: list; --cancel ID)"};
  for (int k = 0; k < kRules; ++k) {
    sluice::RuleOptions& r = rule_options[k];
    r.kind = kinds[k];
    rules[k] = queue->add_subcommand(r.kind, helps[k]);
    rules[k]->fallthrough();
    CLI::App* c = rules[k];
    if (k < 3) {
      c->add_option("--domain", r.domain, "Recipient domain");
      c->add_option("--tenant", r.tenant, "Tenant");
      c->add_option("--campaign", r.campaign, "Campaign");
    }
    c->add_option("--site", r.site, "Site (as `queue sites` names it)");
    if (k == 0 || k == 3) c->add_option("--source", r.source, "Egress source");
    if (k == 2) c->add_option("--pool", r.pool, "The pool to send through");
    if (k == 3) {
      c->add_option("--provider", r.provider, "Provider (etc/providers.toml)");
      c->add_option("--connection-limit", r.connection_limit, "Connections per sending IP");
      c->add_option("--message-rate", r.message_rate, "Messages per time, e.g. 10/s or 500/m");
      c->add_option("--max-deliveries", r.max_deliveries, "Messages per connection");
    }
    c->add_option("--reason", r.reason, "Why (required to add)");
    c->add_option("--duration", r.duration,
                  k == 1 ? "How long (default 5m)" : "How long (default 1h)");
    c->add_option("--cancel", r.id, "Cancel the rule with this id");
  }
  std::string summary_by = "site";
  CLI::App* summary = queue->add_subcommand(
      "summary", "What waits: messages and recipients in flight and scheduled, grouped");
  summary->fallthrough();
  summary->add_option("--by", summary_by, "site, provider, source, pool, tenant, campaign, domain")
      ->capture_default_str();
  sites->fallthrough();  // --http, --json, --config also after the subcommand
  sources->fallthrough();
  explain->fallthrough();
  explain->add_option("id", explain_id, "Message id (the 'queued as' id)")->required();

  sluice::ReportOptions ro;
  CLI::App* report = app.add_subcommand(
      "report", "Deliverability report from event logs: per provider and domain, with actions");
  report->add_option("logs", ro.logs, "Event log files (JSON lines; '-' or none: stdin)");
  report->add_flag("--json", ro.json, "Print JSON instead of the table");
  report->add_option("--html", ro.html, "Also write a self-contained HTML report to this file");
  report->add_option("-c,--config", ro.config,
                     "The server's configuration (postmaster pages, warm-up sources)");
  report->add_option("--domains", ro.domains, "Domains shown in the table")->capture_default_str();

  sluice::AuthCheckOptions ao;
  CLI::App* auth = app.add_subcommand(
      "auth-check", "SPF, DKIM, DMARC and reverse DNS for DOMAIN, against the configuration");
  auth->add_option("domain", ao.domain, "The From domain to check")->required();
  auth->add_option("-c,--config", ao.config_path, "Configuration file (sources, DKIM keys, DNS)")
      ->capture_default_str();
  auth->add_flag("--json", ao.json, "Print JSON");

  CLI11_PARSE(app, argc, argv);
  if (auth->parsed()) return sluice::auth_check(ao);
  if (report->parsed()) return sluice::run_report(ro);
  if (sites->parsed()) return sluice::queue_sites(qo);
  if (sources->parsed()) return sluice::queue_sources(qo);
  if (summary->parsed()) return sluice::queue_summary(qo, summary_by);
  for (int k = 0; k < kRules; ++k) {
    if (!rules[k]->parsed()) continue;
    rule_options[k].cancel = rules[k]->count("--cancel") > 0;
    return sluice::queue_rule(qo, rule_options[k]);
  }
  if (explain->parsed()) return sluice::queue_explain(qo, explain_id);
  if (classify->parsed()) return sluice::classify_replies(co);
  if (sim->parsed()) return sluice::run_sim(sim_config);
  if (serve->parsed()) return sluice::serve(serve_options);
  if (passwd->parsed()) return sluice::passwd(user);
  if (ls->parsed()) return sluice::spool_ls(spool_config);
  return 0;
}
