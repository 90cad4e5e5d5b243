#include "classify/classifier.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <boost/regex.hpp>
#include <unordered_set>
#include <utility>

#include "config/config.h"
#include "config/config_reader.h"
#include "core/text.h"

namespace sluice::embedded {
std::string_view classify_rules();  // generated from etc/classify.toml (cmake/EmbedText.cmake)
}

namespace sluice::classify {
namespace {

constexpr std::array<std::pair<Category, std::string_view>, 13> kCategories{{
    {Category::kDelivered, "delivered"},
    {Category::kConnectionLimit, "connection-limit"},
    {Category::kRateLimit, "rate-limit"},
    {Category::kReputation, "reputation"},
    {Category::kGreylist, "greylist"},
    {Category::kMailboxFull, "mailbox-full"},
    {Category::kUserUnknown, "user-unknown"},
    {Category::kPolicy, "policy"},
    {Category::kAuthentication, "authentication"},
    {Category::kTls, "tls"},
    {Category::kDns, "dns"},
    {Category::kNetwork, "network"},
    {Category::kOther, "other"},
}};

constexpr std::array<std::pair<Action, std::string_view>, 8> kActions{{
    {Action::kNone, "none"},
    {Action::kRetry, "retry"},
    {Action::kBounce, "bounce"},
    {Action::kReduceConnections, "reduce-connections"},
    {Action::kReduceRate, "reduce-rate"},
    {Action::kReduceDeliveries, "reduce-deliveries"},
    {Action::kSuspend, "suspend"},
    {Action::kGreylistRetry, "greylist-retry"},
}};

constexpr std::array<std::string_view, 9> kStageNames{
    "dns", "connect", "banner", "ehlo", "starttls", "mail", "rcpt", "data", "end-of-data"};

template <class E, size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E v) {
  for (const auto& [e, name] : table) {
    if (e == v) return name;
  }
  return "unknown";
}

template <class E, size_t N>
std::optional<E> value_of(const std::array<std::pair<E, std::string_view>, N>& table,
                          std::string_view s) {
  for (const auto& [e, name] : table) {
    if (name == s) return e;
  }
  return std::nullopt;
}

Action default_action(Category c, bool hard) {
  switch (c) {
    case Category::kDelivered:
      return Action::kNone;
    case Category::kConnectionLimit:
      return hard ? Action::kBounce : Action::kReduceConnections;
    case Category::kRateLimit:
      return hard ? Action::kBounce : Action::kReduceRate;
    case Category::kReputation:
      return hard ? Action::kBounce : Action::kSuspend;
    case Category::kGreylist:
      return hard ? Action::kBounce : Action::kGreylistRetry;
    default:
      return hard ? Action::kBounce : Action::kRetry;
  }
}

// A code pattern: "421", "4xx", "45x".
bool code_matches(std::string_view pattern, uint16_t code) {
  const std::string digits = std::to_string(code);
  if (pattern.size() != 3 || digits.size() != 3) return false;
  for (size_t i = 0; i < 3; ++i) {
    const char p = pattern[i];
    if (p != 'x' && p != 'X' && p != digits[i]) return false;
  }
  return true;
}

bool valid_code_pattern(std::string_view p) {
  if (p.size() != 3 || (p[0] != '2' && p[0] != '3' && p[0] != '4' && p[0] != '5')) return false;
  for (char c : p.substr(1)) {
    if (!(c == 'x' || c == 'X' || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// "4.7." matches 4.7.0 … 4.7.999; "4.7.2" matches 4.7.2 only (a complete code is exact).
bool enhanced_matches(std::string_view prefix, const std::optional<smtp::EnhancedCode>& e) {
  if (!e) return false;
  const std::string s = e->str();
  if (prefix.ends_with('.')) return s.starts_with(prefix);
  return s == prefix;
}

}  // namespace

struct Classifier::Rule {
  std::string name;
  std::vector<std::string> providers;  // empty: any
  std::vector<Stage> stages;           // empty: any
  std::vector<std::string> codes;      // empty: any
  std::vector<std::string> enhanced;   // empty: any
  std::optional<boost::regex> text;
  bool others_open = false;
  Category category = Category::kOther;
  std::optional<bool> hard;
  std::optional<Action> action;
  std::vector<std::string> examples;

  bool matches(const Input& in, std::string_view provider, const std::string& text_value) const {
    const smtp::Reply& r = *in.reply;
    if (!providers.empty() &&
        std::find(providers.begin(), providers.end(), provider) == providers.end())
      return false;
    if (!stages.empty() && std::find(stages.begin(), stages.end(), in.stage) == stages.end())
      return false;
    if (others_open && !in.others_open) return false;
    if (!codes.empty() &&
        std::none_of(codes.begin(), codes.end(),
                     [&](const std::string& c) { return code_matches(c, r.code); }))
      return false;
    if (!enhanced.empty() &&
        std::none_of(enhanced.begin(), enhanced.end(),
                     [&](const std::string& e) { return enhanced_matches(e, r.enhanced); }))
      return false;
    if (text && !boost::regex_search(text_value, *text)) return false;
    return true;
  }
};

std::string_view category_name(Category c) { return name_of(kCategories, c); }
std::optional<Category> parse_category(std::string_view s) { return value_of(kCategories, s); }
std::string_view action_name(Action a) { return name_of(kActions, a); }
std::optional<Action> parse_action(std::string_view s) { return value_of(kActions, s); }

bool is_throttle(Action a) {
  return a == Action::kReduceConnections || a == Action::kReduceRate ||
         a == Action::kReduceDeliveries || a == Action::kSuspend || a == Action::kGreylistRetry;
}

std::string_view stage_name(Stage s) {
  const auto i = static_cast<size_t>(s);
  return i < kStageNames.size() ? kStageNames[i] : "unknown";
}

std::optional<Stage> parse_stage(std::string_view s) {
  for (size_t i = 0; i < kStageNames.size(); ++i) {
    if (kStageNames[i] == s) return static_cast<Stage>(i);
  }
  return std::nullopt;
}

Classifier::Classifier() = default;
Classifier::~Classifier() = default;
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;

size_t Classifier::size() const { return rules_.size(); }

Result<Classifier> Classifier::load(const std::string& path) {
  auto text = config::read_text_file(path);
  if (!text) return error(path + ": cannot open the classification rules");
  return parse(*text, path);
}

const Classifier& Classifier::builtin() {
  // The build embeds a file the unit tests load and check; a failure here is a build defect.
  static const Classifier kBuiltin = [] {
    auto c = parse(embedded::classify_rules(), "etc/classify.toml (built in)");
    if (!c) {
      std::fprintf(stderr, "sluice: built-in classification rules: %s\n", c.error().message.c_str());
      std::abort();
    }
    return std::move(*c);
  }();
  return kBuiltin;
}

Result<Classifier> Classifier::parse(std::string_view text, const std::string& name) {
  auto parsed = config::parse_toml_data(text, name);
  if (!parsed) return Unexpected<Error>{parsed.error()};
  const toml::table& root = *parsed;
  for (const auto& [key, node] : root) {
    if (key.str() != "rule") {
      return error(name + ":" + std::to_string(node.source().begin.line) + ": unknown key '" +
                   std::string(key.str()) + "' (expected [[rule]] tables)");
    }
  }
  Classifier c;
  const toml::array* list = root["rule"].as_array();
  if (!list) return c;  // no rules: the code-based fallback
  std::unordered_set<std::string> names;
  for (const toml::node& n : *list) {
    const std::string where = name + ":" + std::to_string(n.source().begin.line);
    const toml::table* t = n.as_table();
    if (!t) return error(where + ": expected a [[rule]] table");
    auto r = std::make_unique<Rule>();
    r->name = (*t)["name"].value_or(std::string());
    if (r->name.empty()) return error(where + ": a rule needs a name");
    const std::string at = where + ": rule " + r->name + ": ";
    if (!names.insert(r->name).second) return error(at + "the name is used twice");

    // A string or an array of strings.
    std::string bad;
    auto strings = [&](std::string_view key, std::vector<std::string>& out) {
      const toml::node* v = t->get(key);
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
    if (!strings("provider", r->providers) || !strings("stage", stages) ||
        !strings("code", r->codes) || !strings("enhanced", r->enhanced) ||
        !strings("examples", r->examples))
      return error(at + bad);
    for (const auto& s : stages) {
      auto st = parse_stage(s);
      if (!st) return error(at + "stage: unknown stage '" + s + "'");
      r->stages.push_back(*st);
    }
    for (const auto& code : r->codes) {
      if (!valid_code_pattern(code))
        return error(at + "code: '" + code + "' is not a code pattern such as 421, 4xx or 45x");
    }
    for (const auto& e : r->enhanced) {
      if (e.empty() || e.find_first_not_of("0123456789.") != std::string::npos)
        return error(at + "enhanced: '" + e + "' is not an enhanced code or prefix (4.7.0, 5.1.)");
    }
    if (const toml::node* v = t->get("text")) {
      auto s = v->value<std::string>();
      if (!s) return error(at + "text: expected a string (a regular expression)");
      try {
        r->text.emplace(*s, boost::regex::perl | boost::regex::icase | boost::regex::optimize);
      } catch (const boost::regex_error& e) {
        return error(at + "text: invalid regular expression: " + e.what());
      }
    }
    if (const toml::node* v = t->get("others_open")) {
      auto b = v->value<bool>();
      if (!b) return error(at + "others_open: expected true or false");
      r->others_open = *b;
    }
    const std::string cat = (*t)["category"].value_or(std::string());
    auto category = parse_category(cat);
    if (!category || *category == Category::kDelivered)
      return error(at + "category: '" + cat + "' is not a category (see doc/classify.md)");
    r->category = *category;
    if (const toml::node* v = t->get("severity")) {
      const std::string s = v->value_or(std::string());
      if (s != "soft" && s != "hard") return error(at + "severity: expected \"soft\" or \"hard\"");
      r->hard = s == "hard";
    }
    if (const toml::node* v = t->get("action")) {
      const std::string s = v->value_or(std::string());
      auto a = parse_action(s);
      if (!a || *a == Action::kNone) return error(at + "action: '" + s + "' is not an action");
      r->action = *a;
    }
    for (const auto& [key, node] : *t) {
      static const std::unordered_set<std::string_view> kKnown{
          "name",     "provider",    "stage",    "code",   "enhanced", "text",
          "category", "others_open", "severity", "action", "source",   "examples"};
      if (!kKnown.count(key.str()))
        return error(at + "unknown key '" + std::string(key.str()) + "'");
    }
    c.rules_.push_back(std::move(r));
  }
  return c;
}

Verdict Classifier::classify(const Input& in) const {
  Verdict v;
  const smtp::Reply& r = *in.reply;
  if (r.code < 400) {
    v.category = Category::kDelivered;
    v.action = Action::kNone;
    v.rule = "code";
    return v;
  }
  const bool code_hard = r.code >= 500;
  const std::string text = r.text();
  for (const auto& rule : rules_) {
    if (!rule->matches(in, in.provider, text)) continue;
    v.category = rule->category;
    v.hard = rule->hard.value_or(code_hard);
    v.action = rule->action.value_or(default_action(rule->category, v.hard));
    v.rule = rule->name;
    return v;
  }
  v.category = Category::kOther;
  v.hard = code_hard;
  v.action = default_action(v.category, v.hard);
  v.rule = "code";
  return v;
}

std::vector<Classifier::Example> Classifier::examples() const {
  std::vector<Example> out;
  for (const auto& r : rules_) {
    for (const auto& e : r->examples) {
      out.push_back(Example{r->name, r->providers.empty() ? std::string() : r->providers.front(),
                            r->stages.empty() ? Stage::kRcpt : r->stages.front(), r->others_open,
                            e});
    }
  }
  return out;
}

Result<smtp::Reply> parse_reply_line(std::string_view line) {
  line = trim(line);
  if (line.size() < 3 || !std::all_of(line.begin(), line.begin() + 3, [](char c) {
        return c >= '0' && c <= '9';
      }))
    return error("a reply starts with a three-digit code: '" + std::string(line) + "'");
  const auto code = static_cast<uint16_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 +
                                          (line[2] - '0'));
  if (code < 200 || code > 599) return error("reply code out of range: " + std::string(line));
  std::string_view rest = line.substr(3);
  if (!rest.empty() && (rest[0] == ' ' || rest[0] == '-')) rest.remove_prefix(1);
  std::optional<smtp::EnhancedCode> enhanced;
  const size_t sp = rest.find(' ');
  if (auto e = smtp::EnhancedCode::parse(rest.substr(0, sp)); e && e->klass == line[0] - '0') {
    enhanced = e;
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  }
  smtp::Reply r;
  r.code = code;
  r.enhanced = enhanced;
  r.lines.emplace_back(trim(rest));
  return r;
}

}  // namespace sluice::classify
