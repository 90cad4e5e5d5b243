// Delivery status notifications (RFC 3464): the multipart/report message sluice sends back to a
// sender when recipients fail permanently or expire.
//
// Rules applied by the caller (queue manager): never for the null sender <>, only for recipients
// whose NOTIFY asks for failures (the default when NOTIFY was not given), and RET=HDRS returns
// only the headers (text/rfc822-headers) while RET=FULL or unspecified returns the message.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "spool/envelope.h"

namespace sluice::bounce {

struct RecipientStatus {
  std::string address;     // Final-Recipient
  std::string orcpt_type;  // Original-Recipient, when the client gave ORCPT
  std::string orcpt;
  std::string action;      // "failed", "delayed", "delivered", "relayed"
  std::string status;      // enhanced status code, e.g. "5.1.1"
  std::string remote_mta;  // host name, "" when none answered
  std::string diagnostic;  // the reply, e.g. "550 5.1.1 no such user"
};

struct DsnInput {
  const spool::MessageMeta* original = nullptr;
  std::string_view original_body;
  std::vector<RecipientStatus> recipients;
  std::string reporting_mta;  // our hostname
  int64_t now_ms = 0;
};

// Whether a recipient asked for a failure notification (RFC 3461 section 4.1).
bool wants_failure_notice(uint8_t notify_bits);

// The complete DSN message (headers and body, CRLF line endings), from MAILER-DAEMON to the
// original sender.
std::string build_dsn(const DsnInput& in);

}  // namespace sluice::bounce
