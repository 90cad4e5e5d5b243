// Fuzzes the reply parser: arbitrary server output, fed whole and in two pieces, must give the
// same replies; every reply parsed must survive a build/parse round trip.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "smtp/reply_parser.h"

namespace {

std::vector<sluice::smtp::Reply> parse_all(std::string_view a, std::string_view b, bool& failed) {
  sluice::smtp::ReplyParser p;
  std::vector<sluice::smtp::Reply> out;
  failed = false;
  for (std::string_view piece : {a, b}) {
    while (auto r = p.next(piece)) {
      if (!r->ok()) {
        failed = true;
        return out;
      }
      out.push_back(**r);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  bool failed_whole = false, failed_split = false;
  const auto whole = parse_all(input, {}, failed_whole);
  const size_t cut = size ? data[0] % size : 0;
  const auto split = parse_all(input.substr(0, cut), input.substr(cut), failed_split);
  if (whole != split || failed_whole != failed_split) std::abort();
  for (const auto& r : whole) {
    if (r.code < 200 || r.code > 559) std::abort();
    auto again = sluice::smtp::parse_reply(r.wire());
    if (!again.ok() || again->code != r.code) std::abort();
  }
  return 0;
}
