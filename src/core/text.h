// ASCII text helpers shared by the protocol code and the config loader.
//
// SMTP keywords, verbs and parameter names are ASCII and case-insensitive; these helpers never
// apply locale rules (std::tolower would), so parsing is the same on every machine.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
constexpr bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}
constexpr char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
}

bool iequals(std::string_view a, std::string_view b);

// Takes the next line (up to, not including, '\n') off the front of `text`; for data files read
// line by line. Precondition: !text.empty().
std::string_view take_line(std::string_view& text);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

// Removes leading and trailing spaces and tabs.
std::string_view trim(std::string_view s);

// Parses a whole string of decimal digits (no sign, no spaces). Fails on overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

// Value of one hex digit; precondition: is_hex(c).
int hex_value(char c);

// Renders control and non-ASCII octets as \xNN so untrusted text is safe in logs and replies.
std::string printable(std::string_view s);

// s with & < > " ' as HTML character references (text and attribute values alike).
std::string html_escape(std::string_view s);

}  // namespace sluice
