#include "smtp/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "core/text.h"
#include "core/utf8.h"

namespace sluice::smtp {
namespace {

constexpr bool is_atext(char c) {
  return is_alnum(c) || (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

// Length of a UTF-8 sequence of two or more octets at the front of s, else 0.
size_t utf8_non_ascii(std::string_view s) {
  const size_t n = utf8_sequence_length(s);
  return n >= 2 ? n : 0;
}

Unexpected<AddressError> syntax(std::string detail) {
  return {AddressError{AddressError::Kind::kSyntax, std::move(detail)}};
}

// A cursor over the text being parsed.
struct Cursor {
  std::string_view s;
  size_t pos = 0;
  bool utf8 = false;

  bool done() const { return pos >= s.size(); }
  char peek() const { return done() ? '\0' : s[pos]; }
  bool eat(char c) {
    if (peek() != c || done()) return false;
    ++pos;
    return true;
  }
  // Consumes one non-ASCII UTF-8 character when one is next.
  bool eat_utf8() {
    const size_t n = utf8_non_ascii(s.substr(pos));
    if (n == 0) return false;
    pos += n;
    utf8 = true;
    return true;
  }
};

// Dot-string = Atom *("." Atom); Atom = 1*atext (RFC 6531: atext also UTF8-non-ascii).
bool scan_dot_string(Cursor& c) {
  for (;;) {
    const size_t start = c.pos;
    while (!c.done()) {
      if (is_atext(c.peek())) {
        ++c.pos;
      } else if (!c.eat_utf8()) {
        break;
      }
    }
    if (c.pos == start) return false;
    if (!c.eat('.')) return true;
  }
}

// Quoted-string = DQUOTE *QcontentSMTP DQUOTE
bool scan_quoted_string(Cursor& c) {
  if (!c.eat('"')) return false;
  while (!c.done()) {
    const char ch = c.peek();
    if (ch == '"') {
      ++c.pos;
      return true;
    }
    if (ch == '\\') {  // quoted-pairSMTP = %d92 %d32-126
      ++c.pos;
      if (c.done() || c.peek() < 32 || c.peek() > 126) return false;
      ++c.pos;
    } else if ((ch >= 32 && ch <= 126) && ch != '"' && ch != '\\') {
      ++c.pos;
    } else if (!c.eat_utf8()) {
      return false;
    }
  }
  return false;
}

// sub-domain = Let-dig [Ldh-str]; U-labels: non-ASCII characters count as letters.
bool scan_sub_domain(Cursor& c) {
  const size_t start = c.pos;
  bool last_hyphen = false;
  while (!c.done()) {
    const char ch = c.peek();
    if (is_alnum(ch)) {
      ++c.pos;
      last_hyphen = false;
    } else if (ch == '-' && c.pos != start) {
      ++c.pos;
      last_hyphen = true;
    } else if (c.eat_utf8()) {
      last_hyphen = false;
    } else {
      break;
    }
  }
  return c.pos > start && !last_hyphen && c.pos - start <= 63;
}

bool scan_domain(Cursor& c) {
  if (!scan_sub_domain(c)) return false;
  while (c.peek() == '.') {
    ++c.pos;
    if (!scan_sub_domain(c)) return false;
  }
  return true;
}

bool is_ipv4(std::string_view s) {
  // IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, 0..255
  int parts = 0;
  while (true) {
    size_t n = 0;
    while (n < s.size() && is_digit(s[n])) ++n;
    if (n == 0 || n > 3) return false;
    auto v = parse_u64(s.substr(0, n));
    if (!v || *v > 255) return false;
    ++parts;
    s.remove_prefix(n);
    if (s.empty()) return parts == 4;
    if (s.front() != '.' || parts == 4) return false;
    s.remove_prefix(1);
  }
}

// Scans "[...]" and checks what it holds.
bool scan_address_literal(Cursor& c, DomainKind* kind) {
  if (!c.eat('[')) return false;
  const size_t close = c.s.find(']', c.pos);
  if (close == std::string_view::npos) return false;
  const std::string_view body = c.s.substr(c.pos, close - c.pos);
  c.pos = close + 1;
  if (is_ipv4(body)) {
    *kind = DomainKind::kIPv4Literal;
    return true;
  }
  if (istarts_with(body, "IPv6:")) {
    const std::string addr(body.substr(5));
    unsigned char buf[16];
    if (addr.empty() || inet_pton(AF_INET6, addr.c_str(), buf) != 1) return false;
    *kind = DomainKind::kIPv6Literal;
    return true;
  }
  // General-address-literal = Standardized-tag ":" 1*dcontent; dcontent = %d33-90 / %d94-126
  const size_t colon = body.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == body.size()) return false;
  const std::string_view tag = body.substr(0, colon);
  if (!is_alnum(tag.back())) return false;
  for (char ch : tag) {
    if (!is_alnum(ch) && ch != '-') return false;
  }
  for (char ch : body.substr(colon + 1)) {
    if (!((ch >= 33 && ch <= 90) || (ch >= 94 && ch <= 126))) return false;
  }
  *kind = DomainKind::kGeneralLiteral;
  return true;
}

// Mailbox = Local-part "@" ( Domain / address-literal )
AddressResult<Mailbox> scan_mailbox(Cursor& c) {
  Mailbox m;
  const size_t lp_start = c.pos;
  const bool ok = c.peek() == '"' ? scan_quoted_string(c) : scan_dot_string(c);
  if (!ok) return syntax("invalid local part");
  m.local_part = std::string(c.s.substr(lp_start, c.pos - lp_start));
  if (!c.eat('@')) return syntax("missing '@domain'");
  const size_t d_start = c.pos;
  if (c.peek() == '[') {
    if (!scan_address_literal(c, &m.domain_kind)) return syntax("invalid address literal");
  } else {
    if (!scan_domain(c)) return syntax("invalid domain");
    m.domain_kind = DomainKind::kName;
  }
  m.domain = std::string(c.s.substr(d_start, c.pos - d_start));
  m.utf8 = c.utf8;
  if (m.local_part.size() > kMaxLocalPart) {
    return Unexpected<AddressError>{
        {AddressError::Kind::kLocalPartTooLong, "local part longer than 64 octets"}};
  }
  if (m.domain.size() > kMaxDomain) {
    return Unexpected<AddressError>{
        {AddressError::Kind::kDomainTooLong, "domain longer than 255 octets"}};
  }
  return m;
}

// Path = "<" [ A-d-l ":" ] Mailbox ">"; null_ok admits "<>", postmaster_ok admits <Postmaster>.
AddressResult<std::optional<Mailbox>> scan_path(std::string_view& s, bool null_ok,
                                                bool postmaster_ok) {
  Cursor c{s};
  if (!c.eat('<')) return syntax("the address must be in angle brackets: <user@domain>");
  std::optional<Mailbox> result;
  if (c.peek() == '>' && null_ok) {
    ++c.pos;
  } else if (postmaster_ok && istarts_with(s.substr(1), "postmaster>")) {
    c.pos += 11;
    result = Mailbox{std::string(s.substr(1, 10)), "", DomainKind::kNone, false};
  } else {
    // A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain  — accepted and ignored.
    if (c.peek() == '@') {
      do {
        if (!c.eat('@') || !scan_domain(c)) return syntax("invalid source route");
      } while (c.eat(','));
      if (!c.eat(':')) return syntax("invalid source route");
    }
    auto m = scan_mailbox(c);
    if (!m) return Unexpected<AddressError>{m.error()};
    if (!c.eat('>')) return syntax("missing '>' after the address");
    result = std::move(*m);
  }
  if (c.pos > kMaxPath) {
    return Unexpected<AddressError>{
        {AddressError::Kind::kPathTooLong, "path longer than 256 octets"}};
  }
  s.remove_prefix(c.pos);
  return result;
}

}  // namespace

std::string Mailbox::str() const {
  if (domain_kind == DomainKind::kNone) return local_part;
  return local_part + '@' + domain;
}

AddressResult<std::optional<Mailbox>> parse_reverse_path(std::string_view& s) {
  return scan_path(s, /*null_ok=*/true, /*postmaster_ok=*/false);
}

AddressResult<Mailbox> parse_forward_path(std::string_view& s) {
  auto r = scan_path(s, /*null_ok=*/false, /*postmaster_ok=*/true);
  if (!r) return Unexpected<AddressError>{r.error()};
  return std::move(**r);
}

AddressResult<Mailbox> parse_mailbox(std::string_view s) {
  Cursor c{s};
  auto m = scan_mailbox(c);
  if (m && !c.done()) return syntax("unexpected text after the address");
  return m;
}

bool is_domain(std::string_view s) {
  Cursor c{s};
  return scan_domain(c) && c.done() && s.size() <= kMaxDomain;
}

bool is_address_literal(std::string_view s, DomainKind* kind) {
  Cursor c{s};
  DomainKind k{};
  if (!scan_address_literal(c, &k) || !c.done()) return false;
  if (kind) *kind = k;
  return true;
}

}  // namespace sluice::smtp
