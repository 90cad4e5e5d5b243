#include "smtp/reply_parser.h"

#include "core/text.h"

namespace sluice::smtp {

Unexpected<ReplyError> ReplyParser::fail(ReplyError::Kind kind, std::string detail) {
  failed_ = ReplyError{kind, printable(detail)};
  return {*failed_};
}

std::optional<Result<Reply, ReplyError>> ReplyParser::next(std::string_view& input) {
  if (failed_) return Result<Reply, ReplyError>(Unexpected<ReplyError>{*failed_});
  while (!input.empty()) {
    // Append up to and including the next LF to the current line.
    const size_t lf = input.find('\n');
    const size_t take = lf == std::string_view::npos ? input.size() : lf + 1;
    if (line_.size() + take > kMaxLineLength + 2) {
      input.remove_prefix(input.size());
      return fail(ReplyError::Kind::kLineTooLong, "reply line longer than 4096 octets");
    }
    line_.append(input.substr(0, take));
    input.remove_prefix(take);
    if (lf == std::string_view::npos) return std::nullopt;

    if (line_.size() < 2 || line_[line_.size() - 2] != '\r') {
      return fail(ReplyError::Kind::kBareLineEnd, "reply line ends in a bare LF: " + line_);
    }
    const std::string_view line(line_.data(), line_.size() - 2);
    if (line.find('\r') != std::string_view::npos) {
      return fail(ReplyError::Kind::kBareLineEnd, "bare CR inside a reply line");
    }
    bool last = false;
    if (auto err = add_line(line, last)) return fail(err->kind, err->detail);
    line_.clear();
    if (last) {
      Reply done = std::move(reply_);
      reply_ = Reply{};
      has_code_ = false;
      return Result<Reply, ReplyError>(std::move(done));
    }
  }
  return std::nullopt;
}

std::optional<ReplyError> ReplyParser::add_line(std::string_view line, bool& last) {
  // Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
  // Reply-code = %x32-35 %x30-35 %x30-39
  if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
      !is_digit(line[2])) {
    return ReplyError{ReplyError::Kind::kBadCode,
                      "bad reply code: " + std::string(line.substr(0, 40))};
  }
  const auto code =
      static_cast<uint16_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
  if (has_code_ && code != reply_.code) {
    return ReplyError{
        ReplyError::Kind::kCodeMismatch,
        "continuation line code " + std::to_string(code) + " after " + std::to_string(reply_.code)};
  }
  if (reply_.lines.size() >= kMaxLines) {
    return ReplyError{ReplyError::Kind::kTooManyLines, "more than 256 reply lines"};
  }
  std::string_view text;
  if (line.size() == 3) {
    last = true;
  } else if (line[3] == ' ' || line[3] == '-') {
    last = line[3] == ' ';
    text = line.substr(4);
  } else {
    return ReplyError{ReplyError::Kind::kBadSeparator,
                      "expected ' ' or '-' after the code: " + std::string(line.substr(0, 40))};
  }
  // RFC 2034 section 4: the enhanced code follows the reply code on every line and its class
  // matches the reply's first digit. Take it from the first line; strip it from every line.
  const size_t sp = text.find(' ');
  auto enh = EnhancedCode::parse(text.substr(0, sp));
  if (enh && enh->klass == code / 100) {
    if (!has_code_) reply_.enhanced = enh;
    if (!has_code_ || (reply_.enhanced && *reply_.enhanced == *enh)) {
      text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    }
  }
  reply_.code = code;
  has_code_ = true;
  reply_.lines.emplace_back(text);
  return std::nullopt;
}

Result<Reply, ReplyError> parse_reply(std::string_view text) {
  ReplyParser parser;
  auto r = parser.next(text);
  if (!r) {
    return Unexpected<ReplyError>{
        {ReplyError::Kind::kBareLineEnd, "incomplete reply (no final CRLF)"}};
  }
  if (r->ok() && !text.empty()) {
    return Unexpected<ReplyError>{
        {ReplyError::Kind::kBadSeparator, "bytes after the final reply line"}};
  }
  return std::move(*r);
}

}  // namespace sluice::smtp
