// Server side: cuts the command stream into lines.
//
// Lines end in CRLF. A line longer than the limit is reported once as kTooLong and the rest of it
// is skipped up to its LF, so one oversized command costs one error reply and the session stays
// in step with the client. A line ending in a bare LF is reported as kBareLf (the session refuses
// it: only CRLF ends a command, which closes the door to SMTP smuggling through command lines).
//
// The framer never copies: it looks at the caller's buffer and says how many bytes it used.
// One per connection; not thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace sluice::smtp {

class LineFramer {
 public:
  // Room for MAIL with every extension's parameters (command.cpp has the per-verb limits).
  static constexpr size_t kDefaultMaxLine = 2048;

  enum class Kind {
    kNeedMore,  // no complete line in the buffer; `consumed` bytes may still be dropped
    kLine,      // `line` is a complete line without its CRLF
    kTooLong,   // a line exceeded the limit (reported once per line)
    kBareLf,    // a line ended in LF without CR; `line` holds it without the LF
  };
  struct Frame {
    Kind kind;
    std::string_view line;  // points into the caller's buffer
    size_t consumed;        // bytes of the buffer this frame used; drop them before the next call
  };

  explicit LineFramer(size_t max_line = kDefaultMaxLine) : max_line_(max_line) {}

  // Looks at the start of `buffer` (the unread bytes) and returns the next frame.
  Frame next(std::string_view buffer);

 private:
  size_t max_line_;        // octets, without CRLF
  bool skipping_ = false;  // inside an overlong line, discarding up to its LF
};

}  // namespace sluice::smtp
