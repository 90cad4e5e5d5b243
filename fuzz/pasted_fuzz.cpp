// Fuzzes replies as operators paste them (src/classify/pasted.cpp): any line must parse, or be
// refused, without a sanitizer report, to a code of 0 or 200..559 and an enhanced code of class
// 2, 4 or 5, and parse the same way twice. (Classifying them is covered by the corpus tests.)
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "classify/classifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto p = sluice::classify::parse_pasted_reply(line);
  if (!p) return 0;
  const auto& r = p->reply;
  if (r.code != 0 && (r.code < 200 || r.code > 559)) std::abort();
  if (r.enhanced && r.enhanced->klass != 2 && r.enhanced->klass != 4 && r.enhanced->klass != 5)
    std::abort();
  auto again = sluice::classify::parse_pasted_reply(line);
  if (!again || again->reply.code != r.code || again->reply.text() != r.text()) std::abort();
  return 0;
}
