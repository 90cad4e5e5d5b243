// Header fields the listener adds to a message it accepts: Received (RFC 5321 section 4.4) always,
// Message-ID and Date (RFC 5322 sections 3.6.4 and 3.6.1) when the client left them out.
// They are written as a prefix stored in front of the body, never by copying the body.
// Pure functions; thread-safe.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::inbound {

// The value of the first field `name` (case-insensitive) in the header section of `message`
// (up to the first empty line), without surrounding spaces; first line only (no unfolding).
std::optional<std::string_view> header_value(std::string_view message, std::string_view name);
// How many fields `name` the header section has (Received: the hops a message has made).
size_t count_fields(std::string_view message, std::string_view name);

// Removes every field `name` (with its folded continuation lines) from the header section of
// `message` and returns the first one's value (unfolded, trimmed); nullopt when there is none.
// For the tags a client sets for sluice alone (X-Tenant, X-Campaign): they never leave.
std::optional<std::string> take_field(std::string& message, std::string_view name);

// "Sat, 28 Nov 2026 10:30:00 +0000"
std::string rfc5322_date(std::time_t t);

struct ReceivedInfo {
  std::string helo;       // what the client said in EHLO/HELO
  std::string client_ip;  // its address
  std::string by;         // our hostname
  std::string protocol;   // RFC 3848 / RFC 6531: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTPS, …
  std::string tls;        // "TLSv1.3 TLS_AES_256_GCM_SHA384" or empty
  std::string id;         // the spool id
  std::string for_rcpt;   // set only for a single recipient (privacy)
  std::time_t when = 0;
};

std::string received_header(const ReceivedInfo& r);

// The protocol name for the Received "with" clause.
std::string with_protocol(bool esmtp, bool tls, bool authenticated, bool smtputf8);

}  // namespace sluice::inbound
