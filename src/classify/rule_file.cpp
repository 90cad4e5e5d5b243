// Parsing the classifier's data files: [[rule]], [[phrase]] and [[hint]] tables, every error
// naming the file, the line and the rule.
#include <unordered_set>

#include "classify/rules.h"
#include "config/config.h"
#include "config/config_reader.h"

namespace sluice::classify {
namespace {

bool valid_code_pattern(std::string_view p) {
  if (p.size() != 3 || (p[0] != '2' && p[0] != '3' && p[0] != '4' && p[0] != '5')) return false;
  for (char c : p.substr(1)) {
    if (!(c == 'x' || c == 'X' || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// The keys a [[rule]] and a [[phrase]] table have in common, but the name.
Status parse_common(const toml::table& t, const std::string& at, Decision& c) {
  std::string bad;
  // A string or an array of strings.
  auto strings = [&](std::string_view key, std::vector<std::string>& out) {
    const toml::node* v = t.get(key);
    if (!v) return true;
    if (auto s = v->value<std::string>()) {
      out.push_back(*s);
      return true;
    }
    const toml::array* a = v->as_array();
    if (!a) {
      bad = std::string(key) + ": expected a string or an array of strings";
      return false;
    }
    for (const toml::node& e : *a) {
      auto s = e.value<std::string>();
      if (!s) {
        bad = std::string(key) + ": expected strings";
        return false;
      }
      out.push_back(*s);
    }
    return true;
  };
  std::vector<std::string> stages;
  if (!strings("provider", c.when.providers) || !strings("stage", stages) ||
      !strings("code", c.when.codes) || !strings("enhanced", c.when.enhanced) ||
      !strings("examples", c.examples))
    return error(at + bad);
  for (const auto& s : stages) {
    auto st = parse_stage(s);
    if (!st || *st == Stage::kUnknown) return error(at + "stage: unknown stage '" + s + "'");
    c.when.stages.push_back(*st);
  }
  for (const auto& code : c.when.codes) {
    if (!valid_code_pattern(code))
      return error(at + "code: '" + code + "' is not a code pattern such as 421, 4xx or 45x");
  }
  for (const auto& e : c.when.enhanced) {
    if (e.empty() || e.find_first_not_of("0123456789.") != std::string::npos)
      return error(at + "enhanced: '" + e + "' is not an enhanced code or prefix (4.7.0, 5.1.)");
  }
  if (const toml::node* v = t.get("text")) {
    auto s = v->value<std::string>();
    if (!s) return error(at + "text: expected a string (a regular expression)");
    try {
      c.when.text.emplace(*s, boost::regex::perl | boost::regex::icase | boost::regex::optimize);
      c.when.filter = Prefilter::of(*s);
    } catch (const boost::regex_error& e) {
      return error(at + "text: invalid regular expression: " + e.what());
    }
  }
  if (const toml::node* v = t.get("others_open")) {
    auto b = v->value<bool>();
    if (!b) return error(at + "others_open: expected true or false");
    c.when.others_open = *b;
  }
  const std::string cat = t["category"].value_or(std::string());
  auto category = parse_category(cat);
  if (!category || *category == Category::kDelivered)
    return error(at + "category: '" + cat + "' is not a category (see doc/classify.md)");
  c.category = *category;
  if (const toml::node* v = t.get("severity")) {
    const std::string s = v->value_or(std::string());
    if (s != "soft" && s != "hard") return error(at + "severity: expected \"soft\" or \"hard\"");
    c.hard = s == "hard";
  }
  if (const toml::node* v = t.get("action")) {
    const std::string s = v->value_or(std::string());
    auto a = parse_action(s);
    if (!a || *a == Action::kNone) return error(at + "action: '" + s + "' is not an action");
    c.action = *a;
  }
  return ok_status();
}

Status unknown_keys(const toml::table& t, const std::string& at,
                    const std::unordered_set<std::string_view>& known) {
  for (const auto& [key, node] : t) {
    if (!known.count(key.str())) return error(at + "unknown key '" + std::string(key.str()) + "'");
  }
  return ok_status();
}

}  // namespace

Result<Classifier> Classifier::parse(std::string_view text, const std::string& name) {
  Classifier c;
  if (auto s = c.parse_more(text, name); !s) return Unexpected<Error>{s.error()};
  return c;
}

Status Classifier::parse_more(std::string_view text, const std::string& name) {
  auto parsed = config::parse_toml_data(text, name);
  if (!parsed) return Unexpected<Error>{parsed.error()};
  const toml::table& root = *parsed;
  for (const auto& [key, node] : root) {
    if (key.str() != "rule" && key.str() != "phrase" && key.str() != "hint") {
      return error(name + ":" + std::to_string(node.source().begin.line) + ": unknown key '" +
                   std::string(key.str()) + "' (expected [[rule]], [[phrase]] or [[hint]] tables)");
    }
  }
  std::unordered_set<std::string> names;
  for (const auto& r : rules_) names.insert(r->name);
  for (const auto& p : phrases_) names.insert(p->name);
  auto each = [&](const char* kind, auto&& fn) -> Status {
    const toml::array* list = root[kind].as_array();
    if (!list) return ok_status();
    for (const toml::node& n : *list) {
      const std::string where = name + ":" + std::to_string(n.source().begin.line);
      const toml::table* t = n.as_table();
      if (!t) return error(where + ": expected a [[" + kind + "]] table");
      if (auto s = fn(*t, where); !s) return s;
    }
    return ok_status();
  };
  static const std::unordered_set<std::string_view> kRuleKeys{
      "name",     "provider",    "stage",    "code",   "enhanced", "text",
      "category", "others_open", "severity", "action", "source",   "examples"};
  // A rule's or phrase's unique name and common keys; `at` becomes "FILE:LINE: KIND NAME: ".
  auto decision = [&](const toml::table& t, const std::string& where, const char* kind, Decision& d,
                      std::string& at) -> Status {
    d.name = t["name"].value_or(std::string());
    if (d.name.empty()) return error(where + ": a " + kind + " needs a name");
    at = where + ": " + kind + " " + d.name + ": ";
    if (!names.insert(d.name).second) return error(at + "the name is used twice");
    return parse_common(t, at, d);
  };
  auto s = each("rule", [&](const toml::table& t, const std::string& where) -> Status {
    auto r = std::make_unique<Rule>();
    std::string at;
    if (auto st = decision(t, where, "rule", *r, at); !st) return st;
    if (auto st = unknown_keys(t, at, kRuleKeys); !st) return st;
    rules_.push_back(std::move(r));
    return ok_status();
  });
  if (!s) return s;
  s = each("phrase", [&](const toml::table& t, const std::string& where) -> Status {
    auto p = std::make_unique<Phrase>();
    std::string at;
    if (auto st = decision(t, where, "phrase", *p, at); !st) return st;
    auto keys = kRuleKeys;
    keys.insert({"weight", "lang"});
    if (auto st = unknown_keys(t, at, keys); !st) return st;
    if (!p->when.text && p->when.enhanced.empty() && p->when.codes.empty())
      return error(at + "a phrase needs a text, an enhanced code or a code");
    if (const toml::node* w = t.get("weight")) {
      auto v = w->value<double>();
      if (!v || *v <= 0 || *v > 100) return error(at + "weight: expected a number in (0, 100]");
      p->weight = *v;
    }
    phrases_.push_back(std::move(p));
    return ok_status();
  });
  if (!s) return s;
  return each("hint", [&](const toml::table& t, const std::string& where) -> Status {
    auto h = std::make_unique<Hint>();
    h->provider = t["provider"].value_or(std::string());
    const std::string text = t["text"].value_or(std::string());
    if (h->provider.empty() || text.empty())
      return error(where + ": a hint needs a provider and a text");
    if (auto st =
            unknown_keys(t, where + ": hint " + h->provider + ": ", {"provider", "text", "source"});
        !st)
      return st;
    try {
      h->text.assign(text, boost::regex::perl | boost::regex::icase | boost::regex::optimize);
      h->filter = Prefilter::of(text);
    } catch (const boost::regex_error& e) {
      return error(where + ": hint " + h->provider +
                   ": text: invalid regular expression: " + e.what());
    }
    hints_.push_back(std::move(h));
    return ok_status();
  });
}

}  // namespace sluice::classify
