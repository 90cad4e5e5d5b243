// Server side: one SMTP command line in, one typed Command (or the exact error reply) out.
//
// Covers every command of RFC 5321 (EHLO, HELO, MAIL, RCPT, DATA, RSET, VRFY, EXPN, HELP, NOOP,
// QUIT) and the extensions sluice speaks: STARTTLS (RFC 3207), AUTH (RFC 4954), BDAT (RFC 3030).
// MAIL and RCPT carry their ESMTP parameters parsed and checked: SIZE (RFC 1870), BODY (RFC 6152,
// RFC 3030), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT (RFC 3461) and AUTH= (RFC 4954).
//
// Every failure is a CommandError holding the reply the listener sends, with the code RFC 5321
// gives for it (500 unknown command or line too long, 501 bad arguments or path too long,
// 502 not implemented, 553 5.6.7 UTF-8 address without SMTPUTF8, 555 unknown parameter).
// Whether a valid command is allowed now (sequence, policy, advertised extensions) is the
// session's decision, not the parser's.
//
// Input: one line without its CRLF, as LineFramer (line_framer.h) delivers it. Untrusted.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/status.h"
#include "smtp/address.h"
#include "smtp/reply.h"

namespace sluice::smtp {

enum class Body : uint8_t { kUnspecified, k7Bit, k8BitMime, kBinaryMime };
enum class Ret : uint8_t { kUnspecified, kFull, kHeaders };

// NOTIFY (RFC 3461 section 4.1): NEVER, or any of SUCCESS, FAILURE, DELAY.
struct Notify {
  bool specified = false;
  bool never = false;
  bool success = false;
  bool failure = false;
  bool delay = false;
  friend bool operator==(const Notify&, const Notify&) = default;
};

// ORCPT (RFC 3461 section 4.2): addr-type ";" xtext, stored decoded.
struct OriginalRecipient {
  std::string addr_type;  // "rfc822" or "utf-8", as given
  std::string address;    // decoded
  friend bool operator==(const OriginalRecipient&, const OriginalRecipient&) = default;
};

struct MailParameters {
  std::optional<uint64_t> size;  // SIZE=, the client's estimate in octets
  Body body = Body::kUnspecified;
  bool smtputf8 = false;
  Ret ret = Ret::kUnspecified;
  std::optional<std::string> envid;  // ENVID=, decoded from xtext
  std::optional<std::string> auth;   // AUTH=, decoded ("<>" when the submitter is unknown)
  friend bool operator==(const MailParameters&, const MailParameters&) = default;
};

struct RcptParameters {
  Notify notify;
  std::optional<OriginalRecipient> orcpt;
  friend bool operator==(const RcptParameters&, const RcptParameters&) = default;
};

struct Helo {
  std::string domain;
};
struct Ehlo {
  std::string domain;
};
struct MailFrom {
  std::optional<Mailbox> sender;  // nullopt: the null reverse-path <>
  MailParameters params;
};
struct RcptTo {
  Mailbox recipient;
  RcptParameters params;
};
struct Data {};
struct Bdat {
  uint64_t size = 0;
  bool last = false;
};
struct Rset {};
struct Vrfy {
  std::string argument;
};
struct Expn {
  std::string argument;
};
struct Help {
  std::string topic;
};
struct Noop {};
struct Quit {};
struct StartTls {};
struct Auth {
  std::string mechanism;                        // upper-cased
  std::optional<std::string> initial_response;  // base64 as sent ("=" is an empty response)
};

using Command = std::variant<Helo, Ehlo, MailFrom, RcptTo, Data, Bdat, Rset, Vrfy, Expn, Help, Noop,
                             Quit, StartTls, Auth>;

// The verb's name as sent on the wire ("MAIL"), for logs.
std::string_view verb_name(const Command& c);

struct CommandError {
  Reply reply;
};

struct ParseContext {
  // RCPT may use a UTF-8 address only in a transaction whose MAIL carried SMTPUTF8.
  bool smtputf8_transaction = false;
};

// Parses one command line (without CRLF).
Result<Command, CommandError> parse_command(std::string_view line, const ParseContext& ctx = {});

// Parsers for the parameter lists after the path, exposed for tests and fuzzing.
Result<MailParameters, CommandError> parse_mail_parameters(std::string_view params);
Result<RcptParameters, CommandError> parse_rcpt_parameters(std::string_view params);

}  // namespace sluice::smtp
