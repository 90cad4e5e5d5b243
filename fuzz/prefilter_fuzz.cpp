// Fuzzes the literal prefilter of classification patterns (src/classify/prefilter.cpp): the
// input is a pattern and a text, split at the first newline. Whenever the pattern compiles as
// the classifier compiles it and matches the text, the prefilter must let the text through:
// a filter that skipped a match would change a verdict.
#include <boost/regex.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "classify/prefilter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  if (nl == std::string_view::npos) return 0;
  const std::string pattern(input.substr(0, nl));
  const std::string text(input.substr(nl + 1));
  boost::regex re;
  try {
    re.assign(pattern, boost::regex::perl | boost::regex::icase | boost::regex::optimize);
  } catch (const std::exception&) {
    return 0;
  }
  const auto filter = sluice::classify::Prefilter::of(pattern);
  bool matched = false;
  try {
    matched = boost::regex_search(text, re);
  } catch (const std::exception&) {
    return 0;  // too complex to search: the classifier would not match either
  }
  if (matched && !filter.may_match(sluice::classify::FilterText(text))) std::abort();
  return 0;
}
