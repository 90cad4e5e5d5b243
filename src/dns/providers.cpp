#include "dns/providers.h"

#include "config/config.h"
#include "config/config_reader.h"
#include "core/text.h"

namespace sluice::dns {
namespace {

bool matches(std::string_view pattern, std::string_view host) {
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".google.com"
    return host.size() > suffix.size() && host.ends_with(suffix);
  }
  return pattern == host;
}

}  // namespace

Result<Providers> Providers::load(const std::string& path) {
  auto text = config::read_text_file(path);
  if (!text) return error(path + ": cannot open the provider rules");
  return parse(*text, path);
}

Result<Providers> Providers::parse(std::string_view text, const std::string& name) {
  Providers p;
  auto parsed = config::parse_toml_data(text, name);
  if (!parsed) return Unexpected<Error>{parsed.error()};
  const toml::table& root = *parsed;
  const toml::array* list = root["provider"].as_array();
  if (!list) return error(name + ": expected [[provider]] tables");
  for (const toml::node& n : *list) {
    const toml::table* t = n.as_table();
    const auto line = std::to_string(n.source().begin.line);
    if (!t) return error(name + ":" + line + ": expected a [[provider]] table");
    Rule r;
    r.name = (*t)["name"].value_or(std::string());
    const toml::array* mx = (*t)["mx"].as_array();
    if (r.name.empty() || !mx) return error(name + ":" + line + ": a provider needs name and mx");
    for (const toml::node& m : *mx) {
      auto s = m.value<std::string>();
      if (!s || s->empty()) return error(name + ":" + line + ": mx patterns are strings");
      r.patterns.push_back(to_lower(*s));
    }
    r.postmaster = (*t)["postmaster"].value_or(std::string());
    p.rules_.push_back(std::move(r));
  }
  return p;
}

std::string Providers::match(const std::vector<std::string>& mx_hosts) const {
  for (const Rule& r : rules_) {
    for (const std::string& host : mx_hosts) {
      const std::string h = to_lower(host);
      for (const std::string& pat : r.patterns) {
        if (matches(pat, h)) return r.name;
      }
    }
  }
  return {};
}

std::map<std::string, std::string> Providers::postmaster_pages() const {
  std::map<std::string, std::string> pages;
  for (const Rule& r : rules_)
    if (!r.postmaster.empty()) pages.emplace(r.name, r.postmaster);
  return pages;
}

}  // namespace sluice::dns
