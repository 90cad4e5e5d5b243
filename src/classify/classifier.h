// Reply classification: every reply the SMTP client meets (real, or synthesized for DNS and
// network failures) becomes a category, a severity and an action for the queue manager and the
// shaping controller. Rules are data (etc/classify.toml, format in doc/classify.md): ordered,
// per provider and generic, matched on stage, code, enhanced code, text (regular expressions
// compiled once) and whether other connections to the site are open; the first match wins.
// Without a matching rule the code decides (2xx/3xx delivered, 4xx other/retry, 5xx
// other/bounce).
//
// Constant after load; classify() is thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classify/stage.h"
#include "core/status.h"
#include "smtp/reply.h"

namespace sluice::classify {

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
  kNone,                // delivered
  kRetry,               // retry with the message's backoff (an attempt is charged)
  kBounce,              // permanent failure: DSN
  kReduceConnections,   // shaping: fewer connections; the message is requeued uncharged
  kReduceRate,          // shaping: lower message rate; requeued uncharged
  kReduceDeliveries,    // shaping: fewer deliveries per connection; requeued uncharged
  kSuspend,             // shaping: suspend the key for a while; requeued uncharged
  kGreylistRetry,       // only this message, after the greylist delay; uncharged
};
std::string_view action_name(Action a);
std::optional<Action> parse_action(std::string_view s);
// True for actions that say something about the sender, not the message: the message is not
// charged an attempt.
bool is_throttle(Action a);

struct Input {
  Stage stage = Stage::kRcpt;
  const smtp::Reply* reply = nullptr;
  std::string_view provider;  // of the site ("" when unknown)
  bool others_open = false;   // other connections to the same site are open
};

struct Verdict {
  Category category = Category::kOther;
  bool hard = false;
  Action action = Action::kRetry;
  std::string_view rule;  // name of the rule that matched ("code" for the fallback); static
                          // storage of the Classifier, valid while it lives
};

class Classifier {
 public:
  Classifier();  // no rules: the code-based fallback only
  ~Classifier();
  Classifier(Classifier&&) noexcept;
  Classifier& operator=(Classifier&&) noexcept;

  static Result<Classifier> load(const std::string& path);
  // The rules shipped in etc/classify.toml, compiled into the binary.
  static const Classifier& builtin();
  // Errors name the file and line of the rule: "FILE:LINE: rule NAME: message".
  static Result<Classifier> parse(std::string_view toml_text, const std::string& name);

  Verdict classify(const Input& in) const;

  struct Example {
    std::string rule;
    std::string provider;  // the rule's first provider ("" for generic rules)
    Stage stage;
    bool others_open;
    std::string reply;  // "421-4.7.0 text"
  };
  // Every rule's examples, for the tests (each must be classified by its own rule).
  std::vector<Example> examples() const;
  size_t size() const;

 private:
  struct Rule;
  std::vector<std::unique_ptr<Rule>> rules_;
};

// "421-4.7.0 text" or "421 text" (one line, as a server sends it) into a Reply; the enhanced
// code is taken when its class matches the code's first digit.
Result<smtp::Reply> parse_reply_line(std::string_view line);

}  // namespace sluice::classify
