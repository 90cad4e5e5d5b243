// Fuzzes the command parser: any line must parse or give an error reply with a 5xx code, and the
// line framer must account for every byte.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/command.h"
#include "smtp/line_framer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  sluice::smtp::LineFramer framer;
  std::string_view buffer = input;
  size_t guard = 0;
  while (!buffer.empty()) {
    auto f = framer.next(buffer);
    if (f.consumed > buffer.size()) std::abort();
    if (f.kind == sluice::smtp::LineFramer::Kind::kNeedMore && f.consumed == 0) break;
    buffer.remove_prefix(f.consumed);
    if (++guard > size + 1) std::abort();  // no progress
  }
  for (bool utf8 : {false, true}) {
    sluice::smtp::ParseContext ctx;
    ctx.smtputf8_transaction = utf8;
    auto r = sluice::smtp::parse_command(input, ctx);
    if (!r.ok()) {
      const auto& reply = r.error().reply;
      if (reply.code < 500 || reply.code > 559 || !reply.enhanced) std::abort();
      if (reply.wire().find('\n') + 1 != reply.wire().size() && reply.lines.size() == 1)
        std::abort();
    } else {
      (void)sluice::smtp::verb_name(*r);
    }
  }
  return 0;
}
