#include "smtp/line_framer.h"

namespace sluice::smtp {

LineFramer::Frame LineFramer::next(std::string_view buffer) {
  const size_t lf = buffer.find('\n');
  if (skipping_) {
    if (lf == std::string_view::npos) return {Kind::kNeedMore, {}, buffer.size()};
    skipping_ = false;
    buffer.remove_prefix(lf + 1);
    Frame f = next(buffer);
    f.consumed += lf + 1;
    return f;
  }
  if (lf == std::string_view::npos) {
    // +1: a CR at the very end may be the first half of the line's CRLF.
    if (buffer.size() > max_line_ + 1) {
      skipping_ = true;
      return {Kind::kTooLong, {}, buffer.size()};
    }
    return {Kind::kNeedMore, {}, 0};
  }
  const bool crlf = lf > 0 && buffer[lf - 1] == '\r';
  const std::string_view line = buffer.substr(0, crlf ? lf - 1 : lf);
  if (line.size() > max_line_) return {Kind::kTooLong, {}, lf + 1};
  return {crlf ? Kind::kLine : Kind::kBareLf, line, lf + 1};
}

}  // namespace sluice::smtp
