// The DATA section (RFC 5321 section 4.5.2): dot-stuffing on the way out, un-stuffing and the
// end-of-data marker on the way in — streamed, never holding the whole message.
//
// DataDecoder (server side) takes the bytes after "354" in pieces of any size, writes the message
// octets (CRLF line endings, stuffing removed) to the caller's buffer, and stops exactly after the
// only end marker it accepts, CRLF "." CRLF, saying how many input bytes it used (what follows
// belongs to the next pipelined command). Content that breaks the rules is not stored but read to
// the end marker, and then refused with one reply:
//   - a bare LF or bare CR (the SMTP smuggling family: "\n.\n", "\r.\r", "\n.\r\n" must never
//     end a message or hide a second one) — 550 5.6.0;
//   - a NUL octet (RFC 5321 section 4.1.1.4: no NUL in mail content) — 550 5.6.0;
//   - a line over 1000 octets including CRLF (RFC 5321 section 4.5.3.1.6) — 550 5.6.0;
//   - more octets than the configured maximum size — 552 5.3.4.
// Because only the strict marker ends DATA, the session stays in step with an honest client and
// nothing after a smuggled marker is ever read as a command.
//
// DataEncoder (client side) writes content dot-stuffed, with every line ending normalised to
// CRLF (so sluice never relays a bare LF to a receiver), then the end marker.
//
// One codec per message; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/reply.h"

namespace sluice::smtp {

inline constexpr size_t kMaxTextLine = 1000;  // octets including CRLF

enum class DataError : uint8_t { kNone, kBareLf, kBareCr, kNul, kLineTooLong, kTooBig };

class DataDecoder {
 public:
  // max_size: message octets allowed (0: no limit).
  explicit DataDecoder(uint64_t max_size = 0, size_t max_line = kMaxTextLine)
      : max_size_(max_size), max_line_(max_line) {}
  DataDecoder(const DataDecoder&) = delete;
  DataDecoder& operator=(const DataDecoder&) = delete;

  struct Step {
    size_t consumed;  // input bytes used
    bool done;        // the end marker was read; the bytes after it were not consumed
  };

  // Consumes bytes from `input`; appends message octets to *out until an error is seen. Once
  // error() is set, what was appended before is part of a refused message: discard it.
  Step decode(std::string_view input, std::string* out);

  bool done() const { return state_ == State::kDone; }
  // The first rule the content broke, kNone when it is acceptable.
  DataError error() const { return error_; }
  // The reply for error() (precondition: error() != kNone).
  Reply error_reply() const;
  // Message octets seen so far, counted even after an error.
  uint64_t size() const { return size_; }

 private:
  enum class State : uint8_t { kLineStart, kInLine, kCr, kDot, kDotCr, kDone };
  void fail(DataError e);
  void emit(std::string_view bytes, std::string* out);
  void add_to_line(size_t n);

  uint64_t max_size_;
  size_t max_line_;
  State state_ = State::kLineStart;
  DataError error_ = DataError::kNone;
  size_t line_len_ = 0;  // wire octets of the current line so far
  uint64_t size_ = 0;
};

class DataEncoder {
 public:
  DataEncoder() = default;
  DataEncoder(const DataEncoder&) = delete;
  DataEncoder& operator=(const DataEncoder&) = delete;

  // Appends the dot-stuffed form of the next piece of content to *out.
  void encode(std::string_view content, std::string* out);
  // Appends CRLF if the content did not end with a line ending, then ".\r\n".
  void finish(std::string* out);

 private:
  bool line_start_ = true;
  bool pending_cr_ = false;  // the previous piece ended in CR: CRLF or a bare CR, not known yet
};

}  // namespace sluice::smtp
