// xtext (RFC 3461 section 4): the encoding of ENVID and ORCPT values in ESMTP parameters.
//
//   xtext = *( xchar / hexchar ); xchar = any ASCII from "!" to "~" except "+" and "=";
//   hexchar = "+" 2(HEXDIG)  (upper-case hex when encoding)
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::smtp {

// Decodes xtext; nullopt when s is not valid xtext.
std::optional<std::string> xtext_decode(std::string_view s);

// Encodes any octets as xtext.
std::string xtext_encode(std::string_view s);

}  // namespace sluice::smtp
