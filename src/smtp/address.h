// Envelope addresses: the Path and Mailbox grammar of RFC 5321 section 4.1.2, with the
// internationalized forms of RFC 6531 (UTF-8 in local parts and domains).
//
// Accepted: dot-string and quoted local parts, domains, address literals ([192.0.2.1],
// [IPv6:2001:db8::1], General-address-literal), the null reverse-path "<>", the special
// recipient "<Postmaster>", and source routes ("<@a,@b:user@c>"), which RFC 5321 section 4.1.1.3
// says to accept and ignore. Limits (RFC 5321 section 4.5.3.1): local part 64 octets, domain 255,
// path 256 including the angle brackets.
//
// The parser records whether an address uses UTF-8; whether that is allowed (SMTPUTF8) is the
// command parser's decision. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice::smtp {

inline constexpr size_t kMaxLocalPart = 64;
inline constexpr size_t kMaxDomain = 255;
inline constexpr size_t kMaxPath = 256;

enum class DomainKind : uint8_t {
  kName,            // example.com (or a U-label domain)
  kIPv4Literal,     // [192.0.2.1]
  kIPv6Literal,     // [IPv6:2001:db8::1]
  kGeneralLiteral,  // [tag:content]
  kNone,            // the bare <Postmaster> recipient
};

struct Mailbox {
  std::string local_part;  // as written: a dot-string, or a quoted string with its quotes
  std::string domain;      // as written; an address literal keeps its brackets
  DomainKind domain_kind = DomainKind::kName;
  bool utf8 = false;  // contains non-ASCII octets: needs SMTPUTF8 to be sent or received

  // "local@domain", or just the local part for <Postmaster>.
  std::string str() const;
  friend bool operator==(const Mailbox&, const Mailbox&) = default;
};

struct AddressError {
  enum class Kind { kSyntax, kLocalPartTooLong, kDomainTooLong, kPathTooLong };
  Kind kind;
  std::string detail;
};

template <class T>
using AddressResult = Result<T, AddressError>;

// Parses a reverse-path at the front of s and advances s past it. nullopt is the null path "<>".
AddressResult<std::optional<Mailbox>> parse_reverse_path(std::string_view& s);

// Parses a forward-path at the front of s and advances s past it; accepts <Postmaster>.
AddressResult<Mailbox> parse_forward_path(std::string_view& s);

// Parses a whole string as a Mailbox (local@domain, no angle brackets).
AddressResult<Mailbox> parse_mailbox(std::string_view s);

// RFC 5321 Domain (sub-domains of letters, digits and hyphens; U-labels allowed).
bool is_domain(std::string_view s);

// "[...]" address literal; sets *kind when given.
bool is_address_literal(std::string_view s, DomainKind* kind = nullptr);

}  // namespace sluice::smtp
