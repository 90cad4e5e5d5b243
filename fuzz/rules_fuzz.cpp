// Fuzzes the classification rules loader (src/classify/rule_file.cpp): any text must load or be
// refused with a message, without a sanitizer report; loaded rules must classify a reply.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "classify/classifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = sluice::classify::Classifier::parse(text, "fuzz.toml");
  if (!c) {
    if (c.error().message.empty()) std::abort();
    return 0;
  }
  const auto r = sluice::smtp::Reply::make(421, "4.7.0", "Too many connections from your IP");
  sluice::classify::Input input;
  input.stage = sluice::classify::Stage::kBanner;
  input.reply = &r;
  (void)c->classify(input);
  return 0;
}
