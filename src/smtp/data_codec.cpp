#include "smtp/data_codec.h"

#include <algorithm>

namespace sluice::smtp {

void DataDecoder::fail(DataError e) {
  if (error_ == DataError::kNone) error_ = e;
}

void DataDecoder::add_to_line(size_t n) {
  line_len_ += n;
  if (line_len_ > max_line_) fail(DataError::kLineTooLong);
}

void DataDecoder::emit(std::string_view bytes, std::string* out) {
  size_ += bytes.size();
  if (max_size_ != 0 && size_ > max_size_) fail(DataError::kTooBig);
  if (error_ == DataError::kNone) out->append(bytes);
}

DataDecoder::Step DataDecoder::decode(std::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size() && state_ != State::kDone) {
    const char c = in[i];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          add_to_line(1);
          state_ = State::kDot;
          ++i;
          continue;
        }
        state_ = State::kInLine;
        continue;  // the same octet, as line content
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
          ++i;
          continue;
        }
        state_ = State::kInLine;  // the stuffed dot is dropped; the octet is line content
        continue;
      case State::kDotCr:
        if (c == '\n') {
          state_ = State::kDone;
          ++i;
          continue;
        }
        // ".\r" then anything else: a bare CR after a lone dot.
        fail(DataError::kBareCr);
        state_ = State::kInLine;
        continue;
      case State::kCr:
        if (c == '\n') {
          add_to_line(1);
          emit("\r\n", out);
          line_len_ = 0;
          state_ = State::kLineStart;
          ++i;
          continue;
        }
        fail(DataError::kBareCr);
        emit("\r", out);
        add_to_line(1);
        state_ = State::kInLine;
        continue;
      case State::kInLine: {
        // Fast path: copy the run up to the next CR or LF at once.
        const char* begin = in.data() + i;
        const char* end = in.data() + in.size();
        const char* stop =
            std::find_if(begin, end, [](char x) { return x == '\r' || x == '\n' || x == '\0'; });
        const size_t run = size_t(stop - begin);
        if (run > 0) {
          add_to_line(run);
          emit(std::string_view(begin, run), out);
          i += run;
          continue;
        }
        if (c == '\r') {
          add_to_line(1);
          state_ = State::kCr;
        } else if (c == '\0') {
          fail(DataError::kNul);  // RFC 5321 section 4.1.1.4 allows no NUL in content
          add_to_line(1);
        } else {
          // A bare LF never ends a line, so "\n.\n" and "\n.\r\n" cannot end the message.
          fail(DataError::kBareLf);
          emit("\n", out);
          add_to_line(1);
        }
        ++i;
        continue;
      }
      case State::kDone:
        break;
    }
  }
  return {i, state_ == State::kDone};
}

Reply DataDecoder::error_reply() const {
  switch (error_) {
    case DataError::kBareLf:
      return Reply::make(550, "5.6.0",
                         "Message refused: bare LF in the content; lines must end in CRLF (RFC "
                         "5321 section 2.3.8)");
    case DataError::kBareCr:
      return Reply::make(550, "5.6.0",
                         "Message refused: bare CR in the content; lines must end in CRLF (RFC "
                         "5321 section 2.3.8)");
    case DataError::kNul:
      return Reply::make(550, "5.6.0", "Message refused: NUL octet in the content");
    case DataError::kLineTooLong:
      return Reply::make(
          550, "5.6.0",
          "Message refused: a line is longer than 1000 octets (RFC 5321 section 4.5.3.1.6)");
    case DataError::kTooBig:
      return Reply::make(552, "5.3.4", "Message size exceeds fixed maximum message size");
    case DataError::kNone:
      break;
  }
  return Reply::make(250, "2.0.0", "OK");
}

void DataEncoder::encode(std::string_view content, std::string* out) {
  out->reserve(out->size() + content.size() + content.size() / 64);
  size_t i = 0;
  if (pending_cr_ && !content.empty()) {
    pending_cr_ = false;
    out->append("\r\n");
    line_start_ = true;
    if (content.front() == '\n') i = 1;  // the CR's own LF
  }
  while (i < content.size()) {
    if (line_start_ && content[i] == '.') out->push_back('.');
    line_start_ = false;
    const char* begin = content.data() + i;
    const char* end = content.data() + content.size();
    const char* stop = std::find_if(begin, end, [](char x) { return x == '\r' || x == '\n'; });
    out->append(begin, stop);
    i += size_t(stop - begin);
    if (i == content.size()) break;
    if (content[i] == '\r') {
      if (i + 1 == content.size()) {
        pending_cr_ = true;  // decide when the next piece arrives
        return;
      }
      if (content[i + 1] == '\n') ++i;
    }
    ++i;
    out->append("\r\n");  // CRLF, bare CR and bare LF all end the line as CRLF
    line_start_ = true;
  }
}

void DataEncoder::finish(std::string* out) {
  if (pending_cr_) {
    out->append("\r\n");
    pending_cr_ = false;
    line_start_ = true;
  }
  if (!line_start_) out->append("\r\n");
  out->append(".\r\n");
  line_start_ = true;
}

}  // namespace sluice::smtp
