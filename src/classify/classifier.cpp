#include "classify/classifier.h"
#include "classify/model.h"

#include <array>
#include <boost/regex.hpp>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "classify/rules.h"
#include "config/config_reader.h"

namespace sluice::embedded {
// Generated from etc/classify.toml and etc/phrases.toml (cmake/EmbedText.cmake).
std::string_view classify_rules();
std::string_view classify_phrases();
std::string_view reply_model();
}  // namespace sluice::embedded

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

constexpr std::array<std::string_view, 10> kStageNames{"dns",         "connect", "banner", "ehlo",
                                                       "starttls",    "mail",    "rcpt",   "data",
                                                       "end-of-data", "unknown"};

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

// A code pattern: "421", "4xx", "45x". Code 0 (none) matches no pattern.
bool code_matches(std::string_view pattern, uint16_t code) {
  if (code == 0) return false;
  const std::string digits = std::to_string(code);
  if (pattern.size() != 3 || digits.size() != 3) return false;
  for (size_t i = 0; i < 3; ++i) {
    const char p = pattern[i];
    if (p != 'x' && p != 'X' && p != digits[i]) return false;
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

bool Conditions::matches(const Input& in, std::string_view provider, const std::string& text_value,
                         const FilterText& filter_text) const {
  const smtp::Reply& r = *in.reply;
  if (!providers.empty() &&
      std::find(providers.begin(), providers.end(), provider) == providers.end())
    return false;
  if (!stages.empty() && std::find(stages.begin(), stages.end(), in.stage) == stages.end())
    return false;
  if (others_open && !in.others_open) return false;
  if (!codes.empty() && std::none_of(codes.begin(), codes.end(),
                                     [&](const std::string& c) { return code_matches(c, r.code); }))
    return false;
  if (!enhanced.empty() &&
      std::none_of(enhanced.begin(), enhanced.end(),
                   [&](const std::string& e) { return enhanced_matches(e, r.enhanced); }))
    return false;
  if (text && (!filter.may_match(filter_text) || !boost::regex_search(text_value, *text)))
    return false;
  return true;
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

std::string_view category_name(Category c) {
  return name_of(kCategories, c);
}
std::optional<Category> parse_category(std::string_view s) {
  return value_of(kCategories, s);
}
std::string_view action_name(Action a) {
  return name_of(kActions, a);
}
std::optional<Action> parse_action(std::string_view s) {
  return value_of(kActions, s);
}

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

size_t Classifier::size() const {
  return rules_.size();
}

Result<Classifier> Classifier::load(const std::string& path) {
  auto text = config::read_text_file(path);
  if (!text) return error(path + ": cannot open the classification rules");
  return parse(*text, path);
}

const Classifier& Classifier::builtin() {
  // The build embeds files the unit tests load and check; a failure here is a build defect.
  static const Classifier kBuiltin = [] {
    auto c = parse(embedded::classify_rules(), "etc/classify.toml (built in)");
    Status more = c ? c->parse_more(embedded::classify_phrases(), "etc/phrases.toml (built in)")
                    : Status(ok_status());
    auto model = WordModel::parse(embedded::reply_model(), "etc/reply_model.tsv (built in)");
    if (!c || !more || !model) {
      std::fprintf(stderr, "sluice: built-in classification rules: %s\n",
                   (!c ? c.error() : !more ? more.error() : model.error()).message.c_str());
      std::abort();
    }
    c->set_model(std::make_shared<const WordModel>(std::move(*model)));
    return std::move(*c);
  }();
  return kBuiltin;
}

size_t Classifier::phrases() const {
  return phrases_.size();
}

std::string_view Classifier::infer_provider(const std::string& text, const FilterText& filter_text,
                                            std::string_view context) const {
  std::optional<FilterText> context_filter;
  for (const auto& h : hints_) {
    if (h->filter.may_match(filter_text) && boost::regex_search(text, h->text)) return h->provider;
    if (context.empty()) continue;
    if (!context_filter) context_filter.emplace(context);
    if (h->filter.may_match(*context_filter) &&
        boost::regex_search(context.begin(), context.end(), h->text))
      return h->provider;
  }
  return {};
}

Verdict Classifier::classify(const Input& in, Evidence* why) const {
  Verdict v;
  const smtp::Reply& r = *in.reply;
  if (r.code != 0 && r.code < 400) {
    v.category = Category::kDelivered;
    v.action = Action::kNone;
    v.rule = "code";
    return v;
  }
  // Without a code, the enhanced code's class says how permanent it is.
  const bool code_hard = r.code != 0 ? r.code >= 500 : (r.enhanced && r.enhanced->klass == 5);
  const std::string text = r.text();
  const FilterText filter_text(text);  // lowered once: most patterns are skipped by it
  const std::string_view provider =
      !in.provider.empty() ? in.provider : infer_provider(text, filter_text, in.context);
  auto decide = [&](Category c, std::optional<bool> hard, std::optional<Action> action,
                    std::string_view name, bool words) {
    v.category = c;
    v.hard = hard.value_or(code_hard);
    v.action = action.value_or(default_action(c, v.hard));
    v.rule = name;
    v.by_words = words;
    return v;
  };
  // 1. Rules: the first that matches decides.
  for (const auto& rule : rules_) {
    if (rule->when.matches(in, provider, text, filter_text))
      return decide(rule->category, rule->hard, rule->action, rule->name,
                    rule->when.text.has_value());
  }
  // 2. Phrases: evidence adds up per category; ties go to the category whose evidence comes
  // first in the file.
  struct Score {
    double total = 0;
    const Phrase* best = nullptr;  // the heaviest phrase of the category (its action wins)
    size_t first = 0;
  };
  std::array<Score, kCategories.size()> scores{};
  static_assert(std::tuple_size_v<decltype(Evidence::weight)> == kCategories.size());
  for (size_t i = 0; i < phrases_.size(); ++i) {
    const Phrase& p = *phrases_[i];
    if (!p.when.matches(in, provider, text, filter_text)) continue;
    Score& s = scores[static_cast<size_t>(p.category)];
    if (!s.best) s.first = i;
    if (!s.best || p.weight > s.best->weight) s.best = &p;
    s.total += p.weight;
  }
  const Score* win = nullptr;
  for (const Score& s : scores) {
    if (s.best && (!win || s.total > win->total || (s.total == win->total && s.first < win->first)))
      win = &s;
  }
  // 3. Where only codes spoke (no phrase with words, no context, no provider's own code), the
  // word model guesses what the words mean. A guess never suspends a site; behaviour still
  // reads the site in delivery (by_words stays false). It does not overrule words, not even
  // contested ones: measured (doc/classify.md, layer 3), that gained little and picked
  // categories no word named.
  if (why && win) {
    for (size_t c = 0; c < scores.size(); ++c) why->weight[c] = scores[c].total;
    why->phrase = win->best->name;
  }
  const bool codes_only = !win || (!win->best->when.text && !win->best->when.others_open &&
                                   win->best->when.providers.empty());
  if (codes_only && model_) {
    std::string model_text;
    if (r.code != 0) model_text = std::to_string(r.code) + " ";
    if (r.enhanced) model_text += r.enhanced->str() + " ";
    model_text += text;
    const Guess g = model_->predict(model_text, stage_name(in.stage));
    if (why) why->model = g;
    const Action a = default_action(g.category, code_hard);
    return decide(g.category, std::nullopt, a == Action::kSuspend ? Action::kRetry : a, "model",
                  false);
  }
  if (win) {
    const Phrase& p = *win->best;
    return decide(p.category, p.hard, p.action, p.name, p.when.text.has_value());
  }
  // 4. The code.
  return decide(Category::kOther, std::nullopt, std::nullopt, "code", false);
}

std::vector<Classifier::Example> Classifier::examples() const {
  std::vector<Example> out;
  auto add = [&](const std::string& name, const Conditions& when,
                 const std::vector<std::string>& examples, bool phrase, Category category) {
    for (const auto& e : examples) {
      out.push_back(Example{name, when.providers.empty() ? std::string() : when.providers.front(),
                            when.stages.empty() ? Stage::kRcpt : when.stages.front(),
                            when.others_open, e, phrase, category});
    }
  };
  for (const auto& r : rules_) add(r->name, r->when, r->examples, false, r->category);
  for (const auto& p : phrases_) add(p->name, p->when, p->examples, true, p->category);
  return out;
}

}  // namespace sluice::classify
