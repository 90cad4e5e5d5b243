// UTF-8 validation for internationalized addresses (RFC 6531) and config text.
//
// Accepts only well-formed UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing
// above U+10FFFF. Pure functions; thread-safe.
#pragma once

#include <string_view>

namespace sluice {

bool is_ascii(std::string_view s);

// True when s is well-formed UTF-8 (ASCII included).
bool is_valid_utf8(std::string_view s);

// Length in octets of the well-formed UTF-8 sequence at the start of s, or 0 when s does not
// start with one. An ASCII octet is a sequence of length 1.
size_t utf8_sequence_length(std::string_view s);

// The longest prefix of s of at most max_bytes octets that does not end inside a multi-octet
// sequence: for cutting text without splitting a character.
std::string_view utf8_prefix(std::string_view s, size_t max_bytes);

}  // namespace sluice
