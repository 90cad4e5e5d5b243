#include "sim/sim_config.h"

#include <fstream>
#include <regex>
#include <sstream>

#include "config/config_reader.h"
#include "core/cidr.h"
#include "core/text.h"

namespace sluice::sim {
namespace {

using config::ConfigError;
using config::parse_rate;
using config::parse_toml;
using config::Section;
using std::chrono::milliseconds;

std::optional<std::string> parse_stage(std::string_view s, Stage& out) {
  return config::parse_named(s, out,
                             {std::pair{std::string_view("banner"), Stage::kBanner},
                              {"ehlo", Stage::kEhlo},
                              {"mail", Stage::kMail}});
}

std::optional<std::string> parse_limit_action(std::string_view s, LimitAction& out) {
  return config::parse_named(s, out,
                             {std::pair{std::string_view("reply"), LimitAction::kReply},
                              {"hangup", LimitAction::kHangup}});
}

std::optional<std::string> parse_down_mode(std::string_view s, DownMode& out) {
  return config::parse_named(s, out,
                             {std::pair{std::string_view("close"), DownMode::kClose},
                              {"refuse", DownMode::kRefuse},
                              {"silent", DownMode::kSilent}});
}

std::optional<std::string> check_regex(std::string_view s) {
  try {
    std::regex re{std::string(s)};
  } catch (const std::regex_error& e) {
    return std::string("invalid regular expression: ") + e.what();
  }
  return std::nullopt;
}

std::optional<std::string> check_reply(std::string_view s) {
  if (s.size() < 4 || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2]) || s[3] != ' ' ||
      s[0] < '2' || s[0] > '5') {
    return "expected a reply such as \"421 4.7.0 text\"";
  }
  return std::nullopt;
}

void reply_key(Section& s, std::string_view key, std::string& out) {
  s.parsed<std::string>(key, out, [](std::string_view v, std::string& o) {
    if (auto e = check_reply(v)) return e;
    o = std::string(v);
    return std::optional<std::string>();
  });
}

void pattern_key(Section& s, std::string_view key, std::string& out) {
  s.parsed<std::string>(key, out, [](std::string_view v, std::string& o) {
    if (auto e = check_regex(v)) return e;
    o = std::string(v);
    return std::optional<std::string>();
  });
}

void read_provider(const toml::table& t, const std::string& file, size_t index, SimConfig& c,
                   std::vector<ConfigError>& errors) {
  ProviderConfig p;
  Section s(&t, "provider[" + std::to_string(index) + "]", file, &errors);
  s.string("name", p.name);
  s.parsed<config::Endpoint>("listen", p.listen, config::parse_endpoint);
  s.string("hostname", p.hostname);
  s.u32("connection_limit", p.connection_limit, 0, 100'000);
  s.parsed<Stage>("limit_stage", p.limit_stage, parse_stage);
  reply_key(s, "limit_reply", p.limit_reply);
  s.parsed<LimitAction>("limit_action", p.limit_action, parse_limit_action);
  s.duration("down_for", p.down_for, milliseconds(0), milliseconds(86'400'000));
  s.parsed<DownMode>("down_mode", p.down_mode, parse_down_mode);
  s.u32("penalty_threshold", p.penalty_threshold, 0, 1'000'000);
  s.u32("penalty_step", p.penalty_step, 1, 100'000);
  s.duration("penalty_decay", p.penalty_decay, milliseconds(1), milliseconds(86'400'000));
  s.parsed<Rate>("message_rate", p.message_rate, parse_rate);
  reply_key(s, "rate_reply", p.rate_reply);
  s.parsed<Rate>("connection_rate", p.connection_rate, parse_rate);
  reply_key(s, "connection_rate_reply", p.connection_rate_reply);
  s.strings("blocked_ips", p.blocked_ips, [](std::string_view v) -> std::optional<std::string> {
    if (Cidr::parse(v)) return std::nullopt;
    return "expected an address or range";
  });
  reply_key(s, "block_reply", p.block_reply);
  s.u32("max_messages_per_connection", p.max_messages_per_connection, 0, 10'000'000);
  reply_key(s, "session_cap_reply", p.session_cap_reply);
  s.duration("greylist", p.greylist, milliseconds(0), milliseconds(86'400'000));
  reply_key(s, "greylist_reply", p.greylist_reply);
  s.duration("tarpit", p.tarpit, milliseconds(0), milliseconds(600'000));
  uint32_t rate_permille = static_cast<uint32_t>(p.transient_failure_rate * 1000);
  s.u32("transient_failure_permille", rate_permille, 0, 1000);
  p.transient_failure_rate = rate_permille / 1000.0;
  reply_key(s, "transient_reply", p.transient_reply);
  pattern_key(s, "hard_bounce_pattern", p.hard_bounce_pattern);
  reply_key(s, "hard_bounce_reply", p.hard_bounce_reply);
  pattern_key(s, "mailbox_full_pattern", p.mailbox_full_pattern);
  reply_key(s, "mailbox_full_reply", p.mailbox_full_reply);
  pattern_key(s, "hang_pattern", p.hang_pattern);
  if (const toml::array* sched = t["limit_schedule"].as_array()) {
    for (const toml::node& n : *sched) {
      const toml::table* e = n.as_table();
      if (!e) continue;
      LimitChange ch;
      Section es(e, "provider[" + std::to_string(index) + "].limit_schedule", file, &errors);
      es.duration("at", ch.at, milliseconds(0), milliseconds(86'400'000));
      es.u32("connection_limit", ch.connection_limit, 0, 100'000);
      es.finish();
      p.limit_schedule.push_back(ch);
    }
  }
  s.known("limit_schedule");
  if (!t.get("listen")) s.fail("listen", "a provider needs a listen address");
  s.finish();
  c.providers.push_back(std::move(p));
}

}  // namespace

Result<SimConfig, std::vector<ConfigError>> parse_sim_config(std::string_view text,
                                                             const std::string& name) {
  std::vector<ConfigError> errors;
  auto parsed = parse_toml(text, name, errors);
  if (!parsed) return Unexpected<std::vector<ConfigError>>{std::move(errors)};
  const toml::table& root = *parsed;
  SimConfig c;
  Section top(&root, "", name, &errors);
  top.string("stats_file", c.stats_file, /*allow_empty=*/true);
  std::optional<config::Endpoint> http;
  config::Endpoint ep;
  if (root.get("http_listen")) {
    top.parsed<config::Endpoint>("http_listen", ep, config::parse_endpoint);
    c.http_listen = ep;
  }
  uint32_t seed = 1;
  top.u32("seed", seed, 0, UINT32_MAX);
  c.seed = seed;
  top.known("provider");
  top.finish();
  const toml::array* providers = root["provider"].as_array();
  if (!providers || providers->empty()) {
    errors.push_back({name, 0, 0, "provider", "at least one [[provider]] is needed"});
  } else {
    size_t i = 0;
    for (const toml::node& n : *providers) {
      if (const toml::table* t = n.as_table()) read_provider(*t, name, i++, c, errors);
    }
  }
  if (!errors.empty()) return Unexpected<std::vector<ConfigError>>{std::move(errors)};
  return c;
}

Result<SimConfig, std::vector<ConfigError>> load_sim_config(const std::string& path) {
  auto text = config::read_text_file(path);
  if (!text) {
    return Unexpected<std::vector<ConfigError>>{
        {ConfigError{path, 0, 0, "", "cannot open the simulator configuration"}}};
  }
  return parse_sim_config(*text, path);
}

}  // namespace sluice::sim
