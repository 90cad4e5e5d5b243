// Fuzzes the spool's envelope codec (src/spool/envelope.cpp): any bytes must decode or be refused
// without a sanitizer report, and what decodes must encode to bytes that decode to the same
// envelope (what recovery reads back is what was written).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spool/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto m = sluice::spool::decode(bytes);
  if (!m) return 0;
  auto again = sluice::spool::decode(sluice::spool::encode(*m));
  if (!again || !(*again == *m)) std::abort();
  return 0;
}
