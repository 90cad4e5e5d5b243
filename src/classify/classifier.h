// Reply classification: every reply the SMTP client meets (real, or synthesized for DNS and
// network failures) becomes a category, a severity and an action for the queue manager and the
// shaping controller. Three layers, all data (etc/classify.toml and etc/phrases.toml, format in
// doc/classify.md):
//   1. rules: ordered, per provider and generic, matched on stage, code, enhanced code, text
//      (regular expressions compiled once) and whether other connections to the site are open;
//      the first match decides. They hold what only a provider's tag or an MTA's exact wording
//      tells.
//   2. phrases: evidence that names the situation ("maximum number of connections", "Postfach
//      voll", "发送频率"), in many languages, each with a category and a weight; the enhanced code
//      and the stage are weaker evidence of the same kind. The category with the most weight wins.
//   3. the word model (model.h): where no words of 1 and 2 decided (only codes spoke), a model
//      trained from the reply corpus guesses the category from the words;
//   4. the code: 2xx/3xx delivered, 4xx other/retry, 5xx other/bounce.
// Without a known provider, hints (host names and tags in the text) name one.
//
// Constant after load; classify() is thread-safe.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classify/stage.h"
#include "core/status.h"
#include "smtp/reply.h"

namespace sluice::classify {

class FilterText;
class WordModel;

enum class Category : uint8_t {
  kDelivered,
  kConnectionLimit,
  kRateLimit,
  kReputation,
  kGreylist,
  kMailboxFull,
  kUserUnknown,
  kPolicy,
  kAuthentication,
  kTls,
  kDns,
  kNetwork,
  kOther,
};
std::string_view category_name(Category c);
std::optional<Category> parse_category(std::string_view s);

enum class Action : uint8_t {
  kNone,               // delivered
  kRetry,              // retry with the message's backoff (an attempt is charged)
  kBounce,             // permanent failure: DSN
  kReduceConnections,  // shaping: fewer connections; the message is requeued uncharged
  kReduceRate,         // shaping: lower message rate; requeued uncharged
  kReduceDeliveries,   // shaping: fewer deliveries per connection; requeued uncharged
  kSuspend,            // shaping: suspend the key for a while; requeued uncharged
  kGreylistRetry,      // only this message, after the greylist delay; uncharged
};
std::string_view action_name(Action a);
std::optional<Action> parse_action(std::string_view s);
// True for actions that say something about the sender, not the message: the message is not
// charged an attempt.
bool is_throttle(Action a);

struct Input {
  Stage stage = Stage::kRcpt;
  const smtp::Reply* reply = nullptr;
  std::string_view provider;  // of the site ("" when unknown: hints may name one)
  bool others_open = false;   // other connections to the same site are open
  std::string_view context;   // text around a pasted reply (log prefix), read for hints only
};

struct Verdict {
  Category category = Category::kOther;
  bool hard = false;
  Action action = Action::kRetry;
  std::string_view rule;  // name of the rule or phrase that decided ("code" for the fallback);
                          // static storage of the Classifier, valid while it lives
  // The reply's words named the situation (a rule or phrase with a text condition decided).
  // When false, only codes spoke: what the receiver does (others working) may say more.
  bool by_words = false;
};

// The word model's guess (model.h).
struct Guess {
  Category category = Category::kOther;
  double probability = 0;  // how sure: the softmax of the model's scores, 0 to 1
};

// Why a verdict came out as it did, for operators and experiments (sluice classify --evidence).
struct Evidence {
  std::array<double, 13> weight{};  // the phrases' weight per category (index: Category)
  std::string_view phrase;          // the heaviest phrase of the leading category ("" none)
  std::optional<Guess> model;       // the word model's guess, when it was asked
};

class Classifier {
 public:
  Classifier();  // no rules: the code-based fallback only
  ~Classifier();
  Classifier(Classifier&&) noexcept;
  Classifier& operator=(Classifier&&) noexcept;

  // A file of [[rule]], [[phrase]] and [[hint]] tables.
  static Result<Classifier> load(const std::string& path);
  // etc/classify.toml and etc/phrases.toml, compiled into the binary.
  static const Classifier& builtin();
  // Errors name the file and line of the rule: "FILE:LINE: rule NAME: message". Parsing
  // several texts appends their tables in order.
  static Result<Classifier> parse(std::string_view toml_text, const std::string& name);
  Status parse_more(std::string_view toml_text, const std::string& name);

  // `why`, when given, is filled with the evidence (a rule that decides leaves it empty).
  Verdict classify(const Input& in, Evidence* why = nullptr) const;
  // The word model for replies no words of the rules and phrases name (the built-in classifier
  // has etc/reply_model.tsv; a classifier of an operator's own rules file has none).
  void set_model(std::shared_ptr<const WordModel> model) { model_ = std::move(model); }

  struct Example {
    std::string rule;      // the rule or phrase that must decide it
    std::string provider;  // the rule's first provider ("" for generic rules)
    Stage stage;
    bool others_open;
    std::string reply;    // "421-4.7.0 text"
    bool phrase = false;  // of a [[phrase]]: it must come to the phrase's category
    Category category = Category::kOther;
  };
  // Every rule's and phrase's examples, for the tests (each must be classified by its own rule,
  // or for a phrase, into its category with that phrase among the evidence).
  std::vector<Example> examples() const;
  size_t size() const;  // rules
  size_t phrases() const;

  struct Rule;
  struct Phrase;
  struct Hint;

 private:
  std::string_view infer_provider(const std::string& text, const FilterText& filter_text,
                                  std::string_view context) const;

  std::shared_ptr<const WordModel> model_;  // the fourth layer (model.h); null: none
  std::vector<std::unique_ptr<Rule>> rules_;
  std::vector<std::unique_ptr<Phrase>> phrases_;
  std::vector<std::unique_ptr<Hint>> hints_;
};

// A reply as an operator pastes it: "421-4.7.0 text", "421 text", "4.7.0 text" or only text,
// with a log prefix ("host mx.example[192.0.2.1] said: 550 5.1.1 …", "smtp; 550 …"), several
// lines joined ("550-5.1.1 a 550-5.1.1 b 550 5.1.1 c"). Code 0 when there is none; the
// enhanced code is taken when its class matches the code's first digit (or, without a code,
// when it is 4 or 5). The stage, when the log says it ("in reply to RCPT TO command").
struct PastedReply {
  smtp::Reply reply;
  std::optional<Stage> stage;
  std::string context;  // the text before the reply (the log prefix), for provider hints
};
Result<PastedReply> parse_pasted_reply(std::string_view line);
// The reply of parse_pasted_reply.
Result<smtp::Reply> parse_reply_line(std::string_view line);

}  // namespace sluice::classify
