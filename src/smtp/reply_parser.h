// Client side: turns the bytes a server sends into Replies.
//
// Fed whatever the socket delivered, in pieces of any size; returns each complete reply
// (single- or multi-line, RFC 5321 section 4.2.1) with its enhanced status code split out when
// the server uses them (RFC 2034). Malformed input — a bad code, a continuation line whose code
// differs, a separator other than '-' or ' ', a bare LF or CR, an overlong line or too many
// lines — is a ReplyError, never a crash; after an error the parser stays failed, because the
// conversation can no longer be trusted and the client must drop the connection.
//
// A code with no text ("250\r\n") is legal by RFC 5321's grammar (Reply-code [ SP textstring ])
// and accepted. One ReplyParser per connection; not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "smtp/reply.h"

namespace sluice::smtp {

struct ReplyError {
  enum class Kind {
    kBadCode,
    kCodeMismatch,
    kBadSeparator,
    kBareLineEnd,
    kLineTooLong,
    kTooManyLines
  };
  Kind kind;
  std::string detail;  // printable, for logs
};

class ReplyParser {
 public:
  // Real servers exceed RFC 5321's 512-octet reply line; refuse only the absurd.
  static constexpr size_t kMaxLineLength = 4096;
  static constexpr size_t kMaxLines = 256;

  ReplyParser() = default;
  ReplyParser(const ReplyParser&) = delete;
  ReplyParser& operator=(const ReplyParser&) = delete;

  // Consumes bytes from the front of `input` and returns:
  //  - nullopt when the bytes so far do not complete a reply (input is then empty);
  //  - a Reply when one is complete (input keeps the bytes after it: pipelined replies);
  //  - a ReplyError when the input is malformed (and every later call returns it again).
  std::optional<Result<Reply, ReplyError>> next(std::string_view& input);

  // True when bytes of an unfinished reply are buffered.
  bool mid_reply() const { return !line_.empty() || !reply_.lines.empty(); }

 private:
  std::optional<ReplyError> add_line(std::string_view line, bool& last);
  Unexpected<ReplyError> fail(ReplyError::Kind kind, std::string detail);

  std::string line_;  // the current line, without its CRLF, while incomplete
  Reply reply_;       // lines so far of the current reply
  bool has_code_ = false;
  std::optional<ReplyError> failed_;
};

// Parses one complete reply held in a string ("250-a\r\n250 b\r\n"); for tests and tools.
Result<Reply, ReplyError> parse_reply(std::string_view text);

}  // namespace sluice::smtp
