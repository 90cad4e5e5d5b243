#include "smtp/reply.h"

#include "core/text.h"
#include "core/utf8.h"

namespace sluice::smtp {
namespace {

// RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets including the code and CRLF.
constexpr size_t kMaxReplyLine = 512;

std::optional<uint16_t> parse_component(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  auto v = parse_u64(s);
  if (!v) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

}  // namespace

std::string EnhancedCode::str() const {
  return std::to_string(klass) + '.' + std::to_string(subject) + '.' + std::to_string(detail);
}

std::optional<EnhancedCode> EnhancedCode::parse(std::string_view s) {
  // RFC 3463 section 2: class "." subject "." detail; class = "2"/"4"/"5",
  // subject = 1*3digit, detail = 1*3digit.
  const size_t d1 = s.find('.');
  if (d1 == std::string_view::npos) return std::nullopt;
  const size_t d2 = s.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return std::nullopt;
  const std::string_view k = s.substr(0, d1);
  if (k.size() != 1 || (k[0] != '2' && k[0] != '4' && k[0] != '5')) return std::nullopt;
  auto subject = parse_component(s.substr(d1 + 1, d2 - d1 - 1), 3);
  auto detail = parse_component(s.substr(d2 + 1), 3);
  if (!subject || !detail) return std::nullopt;
  return EnhancedCode{static_cast<uint8_t>(k[0] - '0'), *subject, *detail};
}

Reply Reply::make(uint16_t code, std::optional<EnhancedCode> enhanced, std::string_view text) {
  Reply r{code, enhanced, {}};
  const size_t prefix = 4 + (enhanced ? enhanced->str().size() + 1 : 0);
  const size_t room = kMaxReplyLine - prefix - 2;
  std::string line;
  auto flush = [&] {
    r.lines.push_back(std::move(line));
    line.clear();
  };
  for (char c : text) {
    if (c == '\n') {
      flush();
      continue;
    }
    if (line.size() == room) flush();
    const auto u = static_cast<unsigned char>(c);
    line.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  flush();
  return r;
}

Reply Reply::make(uint16_t code, std::string_view enhanced, std::string_view text) {
  return make(code, EnhancedCode::parse(enhanced), text);
}

std::string Reply::text() const {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out.push_back(' ');
    out += l;
  }
  return out;
}

Reply Reply::bounded(size_t max_bytes) const {
  Reply r{code, enhanced, {}};
  size_t used = 0;
  for (const auto& l : lines) {
    const size_t sep = r.lines.empty() ? 0 : 1;  // text() joins lines with a space
    if (used + sep + l.size() <= max_bytes) {
      r.lines.push_back(l);
      used += sep + l.size();
      continue;
    }
    const size_t room = max_bytes > used + sep + 3 ? max_bytes - used - sep - 3 : 0;
    if (room > 0) r.lines.push_back(std::string(utf8_prefix(l, room)) + "...");
    else if (!r.lines.empty()) r.lines.back() += "...";
    break;
  }
  return r;
}

std::string Reply::wire() const {
  const std::string code_str = std::to_string(code);
  const std::string enh = enhanced ? enhanced->str() : std::string();
  std::string out;
  const size_t n = lines.empty() ? 1 : lines.size();
  for (size_t i = 0; i < n; ++i) {
    out += code_str;
    out.push_back(i + 1 == n ? ' ' : '-');
    if (!enh.empty()) {
      out += enh;
      out.push_back(' ');
    }
    if (i < lines.size()) out += lines[i];
    if (!enh.empty() && (lines.empty() || lines[i].empty())) out.pop_back();
    out += "\r\n";
  }
  return out;
}

std::string Reply::summary() const {
  std::string out = std::to_string(code);
  if (enhanced) out += ' ' + enhanced->str();
  const std::string t = text();
  if (!t.empty()) out += ' ' + t;
  return out;
}

}  // namespace sluice::smtp
