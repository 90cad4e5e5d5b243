// Fuzzes the DATA codec: decoding must not depend on how the bytes are split, must stop exactly
// after a CRLF.CRLF, and encode-then-decode must give back the content with CRLF line endings.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/data_codec.h"

namespace {

struct Out {
  std::string content;
  size_t consumed = 0;
  bool done = false;
  sluice::smtp::DataError error{};
};

Out decode(std::string_view in, size_t step) {
  sluice::smtp::DataDecoder d(1 << 16);
  Out o;
  while (o.consumed < in.size() && !o.done) {
    auto s = d.decode(in.substr(o.consumed, step), &o.content);
    o.consumed += s.consumed;
    o.done = s.done;
  }
  o.error = d.error();
  return o;
}

// What the encoder promises: bare CR and bare LF become CRLF.
std::string normalise(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += "\r\n";
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (s[i] == '\n') {
      out += "\r\n";
    } else {
      out.push_back(s[i]);
    }
  }
  if (!out.empty() && out.back() != '\n') out += "\r\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Out whole = decode(input, input.size() + 1);
  const Out small = decode(input, size ? (data[0] % 7) + 1 : 1);
  // After an error the content is refused, so only clean content must match.
  const bool clean = whole.error == sluice::smtp::DataError::kNone;
  if ((clean && whole.content != small.content) || whole.consumed != small.consumed ||
      whole.done != small.done || whole.error != small.error) {
    std::abort();
  }
  if (whole.done && input.substr(0, whole.consumed).size() >= 3) {
    const std::string_view end = input.substr(whole.consumed - 3, 3);
    if (end != ".\r\n") std::abort();
  }

  sluice::smtp::DataEncoder enc;
  std::string wire;
  const size_t cut = size ? data[size - 1] % (size + 1) : 0;
  enc.encode(input.substr(0, cut), &wire);
  enc.encode(input.substr(cut), &wire);
  enc.finish(&wire);
  sluice::smtp::DataDecoder dec;
  std::string back;
  auto s = dec.decode(wire, &back);
  // The only rules encoded content may break are the line limit and NUL: the encoder neither
  // folds long lines nor drops NULs (the listener never spools either). Otherwise the content
  // must come back, CRLF-normalised.
  if (!s.done || s.consumed != wire.size()) std::abort();
  if (dec.error() == sluice::smtp::DataError::kNone) {
    if (back != normalise(input)) std::abort();
  } else if (dec.error() != sluice::smtp::DataError::kLineTooLong &&
             dec.error() != sluice::smtp::DataError::kNul) {
    std::abort();
  }
  return 0;
}
