// Extracting the literals a pattern needs (prefilter.h): a recursive descent over the Perl
// syntax the rule files use. Each node yields what is known of the strings it matches:
//   exact     every string it can match, when that is a small finite set ("e-?mails?" gives
//             email, emails, e-mail, e-mails);
//   required  a set one of whose members every match contains.
// A sequence concatenates exact sets while they stay small and keeps the most selective run;
// an alternation needs a constraint from every branch. Anything unknown claims nothing, and
// syntax the descent does not follow gives up on the whole pattern: never a wrong claim.
#include "classify/prefilter.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

namespace sluice::classify {
namespace {

using Set = std::vector<std::string>;  // sorted, unique

constexpr size_t kMaxExact = 64;                          // strings in an exact set
constexpr size_t kMaxRequired = 512;                      // literals a pattern may need checking
constexpr int kMaxDepth = 64;                             // nested groups
constexpr std::string_view kControlNames = "ntrfea";      // escapes of control characters
constexpr std::string_view kControls = "\n\t\r\f\x1b\a";  // what each stands for

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The value of a hexadecimal digit, -1 for another character.
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void normalize(Set& s) {
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
}

size_t shortest(const Set& s) {
  size_t n = std::numeric_limits<size_t>::max();
  for (const auto& x : s) n = std::min(n, x.size());
  return s.empty() ? 0 : n;
}

struct Info {
  std::optional<Set> exact;
  std::optional<Set> required;
};

Info exactly(Set s) {
  normalize(s);
  return Info{std::move(s), std::nullopt};
}

Info zero_width() {
  return exactly({""});
}

// The more selective of two constraints: longer shortest member, then fewer members.
void keep_better(std::optional<Set>& best, const std::optional<Set>& candidate) {
  if (!candidate || candidate->empty() || shortest(*candidate) == 0) return;
  if (!best || shortest(*candidate) > shortest(*best) ||
      (shortest(*candidate) == shortest(*best) && candidate->size() < best->size()))
    best = candidate;
}

// What every match of the node contains: its exact set or its required set.
std::optional<Set> constraint(const Info& i) {
  std::optional<Set> best;
  keep_better(best, i.exact);
  keep_better(best, i.required);
  return best;
}

class Extractor {
 public:
  explicit Extractor(std::string_view pattern) : p_(pattern) {}

  std::optional<Info> run() {
    auto i = alternation();
    if (!i || pos_ != p_.size()) return std::nullopt;
    return i;
  }

 private:
  bool more() const { return pos_ < p_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < p_.size() ? p_[pos_ + ahead] : '\0'; }

  std::optional<Info> alternation() {
    std::vector<Info> branches;
    auto first = sequence();
    if (!first) return std::nullopt;
    branches.push_back(std::move(*first));
    while (more() && peek() == '|') {
      ++pos_;
      auto next = sequence();
      if (!next) return std::nullopt;
      branches.push_back(std::move(*next));
    }
    if (branches.size() == 1) return std::move(branches.front());
    Info out;
    Set exact;
    bool all_exact = true;
    Set required;
    bool all_constrained = true;
    for (const Info& b : branches) {
      if (b.exact) {
        exact.insert(exact.end(), b.exact->begin(), b.exact->end());
      } else {
        all_exact = false;
      }
      if (auto c = constraint(b)) {
        required.insert(required.end(), c->begin(), c->end());
      } else {
        all_constrained = false;
      }
    }
    normalize(exact);
    normalize(required);
    if (all_exact && exact.size() <= kMaxExact) out.exact = std::move(exact);
    if (all_constrained && required.size() <= kMaxRequired) out.required = std::move(required);
    return out;
  }

  std::optional<Info> sequence() {
    Set run{""};  // the exact strings of the current run of exact items
    bool all_exact = true;
    std::optional<Set> best;
    while (more() && peek() != '|' && peek() != ')') {
      auto item = atom();
      if (!item || !quantifier(*item)) return std::nullopt;
      if (item->exact && run.size() * item->exact->size() <= kMaxExact) {
        Set joined;
        for (const auto& a : run)
          for (const auto& b : *item->exact) joined.push_back(a + b);
        normalize(joined);
        run = std::move(joined);
      } else if (item->exact) {
        all_exact = false;
        keep_better(best, run);
        run = *item->exact;
      } else {
        all_exact = false;
        keep_better(best, run);
        keep_better(best, item->required);
        run = Set{""};
      }
    }
    keep_better(best, run);
    Info out;
    if (all_exact) out.exact = run;
    out.required = best;
    return out;
  }

  // A quantifier after an item (none leaves it as it is); false: syntax not followed.
  bool quantifier(Info& item) {
    if (!more()) return true;
    size_t min = 1;
    size_t max = 1;
    const size_t unbounded = std::numeric_limits<size_t>::max();
    switch (peek()) {
      case '?':
        min = 0;
        ++pos_;
        break;
      case '*':
        min = 0;
        max = unbounded;
        ++pos_;
        break;
      case '+':
        max = unbounded;
        ++pos_;
        break;
      case '{': {
        size_t k = pos_ + 1;
        auto number = [&](size_t& value) {
          const size_t start = k;
          value = 0;
          while (k < p_.size() && p_[k] >= '0' && p_[k] <= '9' && k - start < 6)
            value = value * 10 + static_cast<size_t>(p_[k++] - '0');
          return k > start;
        };
        if (!number(min)) return false;  // a literal '{': not followed
        max = min;
        if (k < p_.size() && p_[k] == ',') {
          ++k;
          if (!number(max)) max = unbounded;
        }
        if (k >= p_.size() || p_[k] != '}') return false;
        pos_ = k + 1;
        break;
      }
      default:
        return true;
    }
    if (more() && (peek() == '?' || peek() == '+')) ++pos_;  // lazy or possessive
    if (more() && (peek() == '?' || peek() == '*' || peek() == '+' || peek() == '{')) return false;
    if (min == 0) {
      if (max == 1 && item.exact) {
        item.exact->push_back("");
        normalize(*item.exact);
      } else {
        item.exact.reset();
      }
      item.required.reset();
      return true;
    }
    auto needed = constraint(item);
    if (min != 1 || max != 1) item.exact.reset();
    item.required = std::move(needed);
    return true;
  }

  std::optional<Info> atom() {
    const char c = peek();
    switch (c) {
      case '(':
        return group();
      case '[':
        return char_class();
      case '\\':
        return escape();
      case '.':
        ++pos_;
        return Info{};
      case '^':
      case '$':
        ++pos_;
        return zero_width();
      case '*':
      case '+':
      case '?':
      case '{':
        return std::nullopt;
      default:
        ++pos_;
        return exactly({std::string(1, lower(c))});
    }
  }

  std::optional<Info> group() {
    if (++depth_ > kMaxDepth) return std::nullopt;
    ++pos_;  // '('
    bool assertion = false;
    if (peek() == '?') {
      if (peek(1) == ':' || peek(1) == '>') {
        pos_ += 2;
      } else if (peek(1) == '=' || peek(1) == '!') {
        pos_ += 2;
        assertion = true;
      } else if (peek(1) == '<' && (peek(2) == '=' || peek(2) == '!')) {
        pos_ += 3;
        assertion = true;
      } else {
        return std::nullopt;  // inline flags, named groups, conditionals, comments
      }
    }
    auto inner = alternation();
    if (!inner || peek() != ')') return std::nullopt;
    ++pos_;
    --depth_;
    if (assertion) return zero_width();  // looks, consumes nothing
    return inner;
  }

  std::optional<Info> char_class() {
    ++pos_;  // '['
    bool simple = true;
    if (peek() == '^') {
      simple = false;
      ++pos_;
    }
    Set members;
    bool first = true;
    while (more()) {
      const char c = peek();
      if (c == ']' && !first) {
        ++pos_;
        if (simple && !members.empty() && members.size() <= 8) return exactly(std::move(members));
        return Info{};
      }
      first = false;
      if (c == '[' && (peek(1) == ':' || peek(1) == '=' || peek(1) == '.')) {
        const size_t close = p_.find(std::string{peek(1), ']'}, pos_ + 2);
        if (close == std::string_view::npos) return std::nullopt;
        pos_ = close + 2;
        simple = false;
        continue;
      }
      if (c == '\\') {
        const char e = peek(1);
        if (e == '\0') return std::nullopt;
        if (is_ascii_letter(e) || (e >= '0' && e <= '9')) {
          // \d, \s, \w, \x41, \p{L}: a class of its own kind; ranges from escapes: not followed.
          if (e == 'x' || e == 'p' || e == 'P' || e == 'N' || e == 'o' || e == 'u' || e == 'c')
            return std::nullopt;
          if (peek(2) == '-' && peek(3) != ']') return std::nullopt;
          pos_ += 2;
          simple = false;
          continue;
        }
        if (peek(2) == '-' && peek(3) != ']') return std::nullopt;
        pos_ += 2;
        members.push_back(std::string(1, lower(e)));
        continue;
      }
      if (peek(1) == '-' && peek(2) != ']' && peek(2) != '\0') {
        if (peek(2) == '\\' || peek(2) == '[') return std::nullopt;
        pos_ += 3;  // a range
        simple = false;
        continue;
      }
      if (static_cast<unsigned char>(c) >= 0x80) simple = false;  // one byte of a character
      members.push_back(std::string(1, lower(c)));
      ++pos_;
    }
    return std::nullopt;  // unterminated
  }

  std::optional<Info> escape() {
    const char e = peek(1);
    if (e == '\0') return std::nullopt;
    pos_ += 2;
    switch (e) {
      // Assertions: word boundaries, buffer ends.
      case 'b':
      case 'B':
      case 'A':
      case 'z':
      case 'Z':
      case 'G':
      case '<':
      case '>':
      case '`':
      case '\'':
        return zero_width();
      // Classes of characters: no literal.
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 's':
      case 'S':
      case 'h':
      case 'H':
      case 'v':
      case 'V':
      case 'l':
      case 'u':
      case 'X':
      case 'C':
      case 'R':
        return Info{};
      case 'p':
      case 'P':
        if (peek() == '{') {
          const size_t close = p_.find('}', pos_);
          if (close == std::string_view::npos) return std::nullopt;
          pos_ = close + 1;
        } else if (more()) {
          ++pos_;
        }
        return Info{};
      case 'x': {
        unsigned value = 0;
        if (peek() == '{') {
          const size_t close = p_.find('}', pos_);
          if (close == std::string_view::npos || close == pos_ + 1 || close - pos_ > 3)
            return std::nullopt;
          for (size_t k = pos_ + 1; k < close; ++k) {
            if (hex_value(p_[k]) < 0) return std::nullopt;
            value = value * 16 + static_cast<unsigned>(hex_value(p_[k]));
          }
          pos_ = close + 1;
        } else {
          size_t digits = 0;
          while (digits < 2 && hex_value(peek()) >= 0) {
            value = value * 16 + static_cast<unsigned>(hex_value(peek()));
            ++pos_;
            ++digits;
          }
          if (digits == 0) return std::nullopt;
        }
        if (value > 0x7f) return std::nullopt;
        return exactly({std::string(1, lower(static_cast<char>(value)))});
      }
      default:
        // Control characters: \n, \t, \r, \f, \e, \a.
        if (const size_t k = kControlNames.find(e); k != std::string_view::npos)
          return exactly({std::string(1, kControls[k])});
        // Back-references, octal, \Q…\E, \K, \k<name>, \g and the letters not above.
        if (is_ascii_letter(e) || (e >= '0' && e <= '9')) return std::nullopt;
        return exactly({std::string(1, lower(e))});  // an escaped punctuation or byte
    }
  }

  std::string_view p_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// Drops literals that contain another literal of the set: the shorter one is found wherever
// the longer one is.
Set minimal(Set s) {
  std::sort(s.begin(), s.end(),
            [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
  Set out;
  for (const auto& x : s) {
    const bool covered = std::any_of(out.begin(), out.end(), [&](const std::string& kept) {
      return x.find(kept) != std::string::npos;
    });
    if (!covered) out.push_back(x);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

FilterText::FilterText(std::string_view text) : lower_(text) {
  for (char& c : lower_) c = lower(c);
  for (size_t i = 0; i + 3 <= lower_.size(); ++i) grams_.set(gram(lower_.data() + i));
}

uint16_t FilterText::gram(const char* p) {
  const auto a = static_cast<uint32_t>(static_cast<unsigned char>(p[0]));
  const auto b = static_cast<uint32_t>(static_cast<unsigned char>(p[1]));
  const auto c = static_cast<uint32_t>(static_cast<unsigned char>(p[2]));
  return static_cast<uint16_t>(((a * 0x9E3779B1u) ^ (b * 0x85EBCA77u) ^ (c * 0xC2B2AE3Du)) >> 20);
}

Prefilter Prefilter::of(std::string_view pattern) {
  auto info = Extractor(pattern).run();
  if (!info) return {};
  auto needed = constraint(*info);
  if (!needed) return {};
  Prefilter f;
  for (auto& text : minimal(std::move(*needed))) {
    Literal l;
    if (text.size() >= 3) {
      // The first and last sequences and two between: most absent literals miss one of them.
      const size_t last = text.size() - 3;
      for (size_t at : {size_t{0}, last, last / 3, 2 * last / 3}) {
        const uint16_t g = FilterText::gram(text.data() + at);
        if (std::find(l.grams.begin(), l.grams.begin() + l.n_grams, g) ==
            l.grams.begin() + l.n_grams)
          l.grams[l.n_grams++] = g;
      }
    }
    l.text = std::move(text);
    f.literals_.push_back(std::move(l));
  }
  return f;
}

std::vector<std::string> Prefilter::literals() const {
  std::vector<std::string> out;
  for (const auto& l : literals_) out.push_back(l.text);
  return out;
}

bool Prefilter::may_match(const FilterText& text) const {
  if (literals_.empty()) return true;
  return std::any_of(literals_.begin(), literals_.end(), [&](const Literal& l) {
    for (uint8_t i = 0; i < l.n_grams; ++i) {
      if (!text.has_gram(l.grams[i])) return false;
    }
    return text.find(l.text);
  });
}

}  // namespace sluice::classify
