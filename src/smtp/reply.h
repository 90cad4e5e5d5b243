// SMTP replies: the value both sides share, and the server-side builder.
//
// A Reply is a three-digit code (RFC 5321 section 4.2), an optional enhanced status code
// (RFC 3463, carried in replies as RFC 2034 describes) and one or more text lines. The client
// gets Replies from ReplyParser (reply_parser.h); the listener builds them and sends wire().
//
// Pure values; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::smtp {

// class.subject.detail, e.g. 4.7.0. class is 2, 4 or 5; subject and detail are 0..999.
struct EnhancedCode {
  uint8_t klass = 0;
  uint16_t subject = 0;
  uint16_t detail = 0;

  std::string str() const;
  friend bool operator==(const EnhancedCode&, const EnhancedCode&) = default;

  // Parses "4.7.0" exactly (the whole string).
  static std::optional<EnhancedCode> parse(std::string_view s);
};

struct Reply {
  uint16_t code = 0;                     // 200..559
  std::optional<EnhancedCode> enhanced;  // when the server sent one (or the builder adds one)
  std::vector<std::string> lines;        // text of each line, without code and enhanced code

  // Builds a reply; '\n' in text starts a new line. Text is made safe for the wire: other control
  // octets become spaces, and lines too long for RFC 5321's 512-octet reply line are split.
  static Reply make(uint16_t code, std::optional<EnhancedCode> enhanced, std::string_view text);
  // Convenience: make(code, EnhancedCode::parse(enhanced), text); enhanced may be "".
  static Reply make(uint16_t code, std::string_view enhanced, std::string_view text);

  // The lines joined with a single space: what logs and the classifier read.
  std::string text() const;
  // "code[-| ]enhanced text\r\n" for every line: what the listener sends.
  std::string wire() const;
  // "451 4.7.1 text" on one line: for logs and error messages.
  std::string summary() const;
  // This reply cut to at most `max_bytes` of text (whole lines first, then the last line cut,
  // ending in "..."): what is kept of a receiver's reply for classification, logs, site state and
  // DSNs, however long the receiver made it.
  Reply bounded(size_t max_bytes) const;

  bool positive() const { return code >= 200 && code < 400; }
  bool intermediate() const { return code >= 300 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }

  friend bool operator==(const Reply&, const Reply&) = default;
};

}  // namespace sluice::smtp
