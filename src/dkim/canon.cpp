#include "dkim/canon.h"

#include <algorithm>
#include <map>

#include "core/text.h"

namespace sluice::dkim {
namespace {

bool wsp(char c) { return c == ' ' || c == '\t'; }

// The lines of `text`, without their line ends; a last line without one is a line too.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    const size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    at = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return out;
}

}  // namespace

std::vector<HeaderField> split_header(std::string_view text) {
  std::vector<HeaderField> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    const size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
    std::string_view line = text.substr(at, next - at);
    std::string_view bare = line;
    while (!bare.empty() && (bare.back() == '\n' || bare.back() == '\r')) bare.remove_suffix(1);
    if (bare.empty()) break;  // the blank line: the body follows
    if (wsp(line.front())) {
      if (out.empty()) break;  // a continuation of nothing: not a header
      HeaderField& last = out.back();
      last.raw = std::string_view(last.raw.data(), last.raw.size() + line.size());
    } else {
      const size_t colon = bare.find(':');
      if (colon == std::string_view::npos) break;
      std::string_view name = bare.substr(0, colon);
      while (!name.empty() && wsp(name.back())) name.remove_suffix(1);
      out.push_back({name, line});
    }
    at = next;
  }
  return out;
}

size_t body_offset(std::string_view text) {
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) return text.size();
    const bool blank = nl == at || (nl == at + 1 && text[at] == '\r');
    at = nl + 1;
    if (blank) return at;
  }
  return text.size();
}

std::string canon_header(const HeaderField& f, Canon c) {
  std::string out;
  if (c == Canon::kSimple) {
    // As written, with every line ending as CRLF.
    for (std::string_view line : lines_of(f.raw)) {
      out.append(line);
      out += "\r\n";
    }
    return out;
  }
  out = to_lower(f.name);
  out.push_back(':');
  const std::string_view value = f.raw.substr(f.raw.find(':') + 1);
  const size_t start = out.size();
  bool space = false;
  for (char ch : value) {
    if (ch == '\r' || ch == '\n') continue;  // unfold
    if (wsp(ch)) {
      space = true;
      continue;
    }
    if (space && out.size() > start) out.push_back(' ');
    space = false;
    out.push_back(ch);
  }
  out += "\r\n";
  return out;
}

std::string canon_body(std::string_view body, Canon c) {
  std::vector<std::string> lines;
  for (std::string_view line : lines_of(body)) {
    if (c == Canon::kSimple) {
      lines.emplace_back(line);
      continue;
    }
    std::string l;
    bool space = false;
    for (char ch : line) {
      if (wsp(ch)) {
        space = true;
        continue;
      }
      if (space) l.push_back(' ');
      space = false;
      l.push_back(ch);
    }
    lines.push_back(std::move(l));  // whitespace at the line's end is gone
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string out;
  for (const std::string& l : lines) {
    out += l;
    out += "\r\n";
  }
  if (out.empty() && c == Canon::kSimple) out = "\r\n";
  return out;
}

std::vector<std::string> signed_names(const std::vector<HeaderField>& fields,
                                      const std::vector<std::string>& sign,
                                      const std::vector<std::string>& oversign) {
  std::map<std::string, size_t> present;
  for (const HeaderField& f : fields) ++present[to_lower(f.name)];
  std::vector<std::string> names;
  for (const std::string& n : sign) names.push_back(to_lower(n));
  for (const std::string& n : oversign) {
    const std::string l = to_lower(n);
    if (std::find(names.begin(), names.end(), l) == names.end()) names.push_back(l);
  }
  std::vector<std::string> out;
  for (const std::string& n : names) {
    const bool over = std::any_of(oversign.begin(), oversign.end(),
                                  [&](const std::string& o) { return iequals(o, n); });
    const auto it = present.find(n);
    const size_t times = (it == present.end() ? 0 : it->second) + (over ? 1 : 0);
    for (size_t i = 0; i < times; ++i) out.push_back(n);
  }
  return out;
}

std::string header_hash_input(const std::vector<HeaderField>& fields,
                              const std::vector<std::string>& names, Canon c) {
  std::map<std::string, std::vector<size_t>> by_name;  // lower-case name → indexes, top down
  for (size_t i = 0; i < fields.size(); ++i) by_name[to_lower(fields[i].name)].push_back(i);
  std::map<std::string, size_t> used;
  std::string out;
  for (const std::string& n : names) {
    auto it = by_name.find(to_lower(n));
    if (it == by_name.end()) continue;
    size_t& k = used[it->first];
    if (k >= it->second.size()) continue;  // oversigned: no instance, nothing hashed
    out += canon_header(fields[it->second[it->second.size() - 1 - k]], c);
    ++k;
  }
  return out;
}

}  // namespace sluice::dkim
