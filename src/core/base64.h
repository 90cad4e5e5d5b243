// Base64 (RFC 4648, standard alphabet, padded): SASL responses and password hashes.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

std::string base64_encode(std::string_view bytes);
// Strict: padding required, no whitespace; nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace sluice
