// sluice — outbound mail transfer agent. The command line: one binary, one subcommand per job.
#include <CLI/CLI.hpp>
#include <string>

#include "app/serve.h"
#include "app/tools.h"
#include "app/sim.h"
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

  CLI11_PARSE(app, argc, argv);
  if (sim->parsed()) return sluice::run_sim(sim_config);
  if (serve->parsed()) return sluice::serve(serve_options);
  if (passwd->parsed()) return sluice::passwd(user);
  if (ls->parsed()) return sluice::spool_ls(spool_config);
  return 0;
}
