// The classifier's data, as parsed from [[rule]], [[phrase]] and [[hint]] tables (format in
// doc/classify.md). Internal to src/classify; constant after load.
#pragma once

#include <boost/regex.hpp>
#include <optional>
#include <string>
#include <vector>

#include "classify/classifier.h"
#include "classify/prefilter.h"

namespace sluice::classify {

// The conditions a rule or phrase may carry; each absent one matches everything.
struct Conditions {
  std::vector<std::string> providers;  // empty: any
  std::vector<Stage> stages;           // empty: any; Stage::kUnknown fails a stage list
  std::vector<std::string> codes;      // "421", "4xx", "45x"; empty: any (code 0 fails a list)
  std::vector<std::string> enhanced;   // exact "4.7.0" or prefix "4.7."; empty: any
  std::optional<boost::regex> text;    // searched in the normalized text
  Prefilter filter;                    // of `text`: skips searches that cannot match
  bool others_open = false;            // only while other connections to the site are open

  bool matches(const Input& in, std::string_view provider, const std::string& text_value,
               const FilterText& filter_text) const;
};

// What a rule and a phrase have in common: conditions and what they conclude.
struct Decision {
  std::string name;
  Conditions when;
  Category category = Category::kOther;
  std::optional<bool> hard;      // absent: the code's class decides
  std::optional<Action> action;  // absent: the category's default
  std::vector<std::string> examples;
};

// The first rule that matches decides.
struct Classifier::Rule : Decision {};

// Evidence for a category: every phrase that matches adds its weight to its category.
struct Classifier::Phrase : Decision {
  double weight = 10;
};

// Names the provider of a reply that came without one (sluice classify, pasted replies).
struct Classifier::Hint {
  std::string provider;
  boost::regex text;  // searched in the reply's text and its context
  Prefilter filter;   // of `text`
};

// Default actions by category (doc/classify.md).
Action default_action(Category c, bool hard);

}  // namespace sluice::classify
