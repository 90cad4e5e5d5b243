// The word model: the fourth layer of reply classification, for replies whose words no rule or
// phrase names (the verdict would come from the codes alone). A multinomial logistic regression
// over the reply's words, word pairs, codes and stage, trained from the development split of the
// reply corpus by scripts/train-reply-model into etc/reply_model.tsv (compiled into the binary).
// It guesses the category the words most likely mean; the classifier marks such verdicts (rule
// "model", by_words false), never lets a guess suspend a site, and behaviour still decides in
// delivery where it can (doc/classify.md).
//
// Features are computed on the reply's octets exactly as the training script does (see it).
// Constant after parse; predict() is thread-safe.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "classify/classifier.h"
#include "core/status.h"

namespace sluice::classify {

class WordModel {
 public:
  // Lines "FEATURE<TAB>CATEGORY<TAB>WEIGHT"; '#' lines are comments. Errors name the line.
  static Result<WordModel> parse(std::string_view text, const std::string& name);

  bool empty() const { return weights_.empty(); }
  size_t size() const { return weights_.size(); }

  // The features of a reply: `text` is the reply as the corpus holds it (code, enhanced code and
  // words), `stage` its stage name.
  static std::vector<std::string> features(std::string_view text, std::string_view stage);
  // The most likely category (ties: the first in alphabetical order of the names).
  Guess predict(std::string_view text, std::string_view stage) const;

 private:
  static constexpr size_t kN = 12;  // categories other than delivered
  std::unordered_map<std::string, std::array<double, kN>> weights_;
};

}  // namespace sluice::classify
