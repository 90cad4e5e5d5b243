#include "smtp/command.h"

#include "core/text.h"
#include "core/utf8.h"

namespace sluice::smtp {
namespace {

// RFC 5321 section 4.5.3.1.4: 512 octets including CRLF; extensions add room for their
// parameters: SIZE +26 (RFC 1870 section 4), RET/ENVID +100 and NOTIFY/ORCPT +500 (RFC 3461
// section 5), AUTH= +500 (RFC 4954 section 5), and BODY=/SMTPUTF8 (+32, our allowance).
constexpr size_t kMaxLine = 510;
constexpr size_t kMaxMailLine = kMaxLine + 26 + 100 + 500 + 32;
constexpr size_t kMaxRcptLine = kMaxLine + 500;

Unexpected<CommandError> reply_error(uint16_t code, std::string_view enhanced,
                                     std::string_view text) {
  return {CommandError{Reply::make(code, enhanced, text)}};
}

Unexpected<CommandError> address_error(const AddressError& e, bool sender) {
  const std::string_view enh = sender ? "5.1.7" : "5.1.3";
  const std::string who = sender ? "sender" : "recipient";
  switch (e.kind) {
    case AddressError::Kind::kPathTooLong:
      return reply_error(501, enh, "Path too long");
    case AddressError::Kind::kLocalPartTooLong:
      return reply_error(501, enh, "Local part of the " + who + " address longer than 64 octets");
    case AddressError::Kind::kDomainTooLong:
      return reply_error(501, enh, "Domain of the " + who + " address longer than 255 octets");
    case AddressError::Kind::kSyntax:
      break;
  }
  return reply_error(501, enh, "Bad " + who + " address syntax: " + e.detail);
}

Unexpected<CommandError> needs_smtputf8() {
  return reply_error(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter");
}

// Splits "VERB rest": verb up to the first space; rest without the separating space.
void split_verb(std::string_view line, std::string_view& verb, std::string_view& rest) {
  const size_t sp = line.find(' ');
  verb = line.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
}

// Commands that take no argument; trailing spaces are tolerated, anything else is refused.
template <class C>
Result<Command, CommandError> no_argument(std::string_view rest, std::string_view verb) {
  if (!trim(rest).empty()) {
    return reply_error(501, "5.5.4", "Syntax error: " + to_upper(verb) + " takes no argument");
  }
  return Command{C{}};
}

bool valid_text_argument(std::string_view s) {
  // Printable text for VRFY, EXPN, HELP, NOOP; UTF-8 tolerated (RFC 6531 section 3.7.4.2).
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return is_valid_utf8(s);
}

Result<Command, CommandError> parse_hello(std::string_view rest, bool extended) {
  const std::string_view arg = trim(rest);
  const std::string_view verb = extended ? "EHLO" : "HELO";
  if (arg.empty())
    return reply_error(501, "5.5.4", std::string(verb) + " requires a domain or address literal");
  if (!is_domain(arg) && !is_address_literal(arg)) {
    return reply_error(501, "5.5.4",
                       "Invalid " + std::string(verb) + " argument: " + printable(arg));
  }
  if (extended) return Command{Ehlo{std::string(arg)}};
  return Command{Helo{std::string(arg)}};
}

// "FROM:" / "TO:" then optional spaces (a common deviation accepted by most servers).
bool eat_keyword(std::string_view& rest, std::string_view keyword) {
  if (!istarts_with(rest, keyword)) return false;
  rest.remove_prefix(keyword.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return true;
}

// After a path: nothing, or SP and parameters.
Result<std::string_view, CommandError> parameters_after_path(std::string_view rest) {
  if (rest.empty() || trim(rest).empty()) return std::string_view();
  if (rest.front() != ' ') return reply_error(501, "5.5.4", "Syntax error after the address");
  return trim(rest);
}

Result<Command, CommandError> parse_mail(std::string_view rest) {
  if (!eat_keyword(rest, "FROM:")) return reply_error(501, "5.5.4", "Syntax: MAIL FROM:<address>");
  auto path = parse_reverse_path(rest);
  if (!path) return address_error(path.error(), /*sender=*/true);
  auto params_text = parameters_after_path(rest);
  if (!params_text) return Unexpected<CommandError>{params_text.error()};
  auto params = parse_mail_parameters(*params_text);
  if (!params) return Unexpected<CommandError>{params.error()};
  if (*path && (*path)->utf8 && !params->smtputf8) return needs_smtputf8();
  return Command{MailFrom{std::move(*path), std::move(*params)}};
}

Result<Command, CommandError> parse_rcpt(std::string_view rest, const ParseContext& ctx) {
  if (!eat_keyword(rest, "TO:")) return reply_error(501, "5.5.4", "Syntax: RCPT TO:<address>");
  auto path = parse_forward_path(rest);
  if (!path) return address_error(path.error(), /*sender=*/false);
  auto params_text = parameters_after_path(rest);
  if (!params_text) return Unexpected<CommandError>{params_text.error()};
  auto params = parse_rcpt_parameters(*params_text);
  if (!params) return Unexpected<CommandError>{params.error()};
  if (path->utf8 && !ctx.smtputf8_transaction) return needs_smtputf8();
  return Command{RcptTo{std::move(*path), std::move(*params)}};
}

Result<Command, CommandError> parse_bdat(std::string_view rest) {
  // bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]; end-marker = "LAST"
  const size_t sp = rest.find(' ');
  const std::string_view size_text = rest.substr(0, sp);
  auto size = parse_u64(size_text);
  if (!size || size_text.size() > 20) {
    return reply_error(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
  }
  bool last = false;
  if (sp != std::string_view::npos) {
    const std::string_view marker = trim(rest.substr(sp + 1));
    if (!iequals(marker, "LAST"))
      return reply_error(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
    last = true;
  }
  return Command{Bdat{*size, last}};
}

Result<Command, CommandError> parse_auth(std::string_view rest) {
  // "AUTH" SP sasl-mech [SP initial-response]; sasl-mech = 1*20(UPPER-ALPHA / DIGIT / "-" / "_")
  rest = trim(rest);
  const size_t sp = rest.find(' ');
  const std::string_view mech = rest.substr(0, sp);
  if (mech.empty() || mech.size() > 20)
    return reply_error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
  for (char c : mech) {
    if (!is_alnum(c) && c != '-' && c != '_')
      return reply_error(501, "5.5.4", "Invalid SASL mechanism name");
  }
  Auth a{to_upper(mech), std::nullopt};
  if (sp != std::string_view::npos) {
    const std::string_view ir = trim(rest.substr(sp + 1));
    for (char c : ir) {
      if (!is_alnum(c) && c != '+' && c != '/' && c != '=') {
        return reply_error(501, "5.5.2", "Initial response is not base64");
      }
    }
    a.initial_response = std::string(ir);
  }
  return Command{std::move(a)};
}

template <class C>
Result<Command, CommandError> text_command(std::string_view rest, bool required,
                                           std::string_view verb) {
  const std::string_view arg = trim(rest);
  if (required && arg.empty())
    return reply_error(501, "5.5.4", to_upper(verb) + " requires an argument");
  if (!valid_text_argument(arg))
    return reply_error(501, "5.5.4", "Invalid characters in the argument");
  return Command{C{std::string(arg)}};
}

}  // namespace

std::string_view verb_name(const Command& c) {
  static constexpr std::string_view kNames[] = {"HELO", "EHLO", "MAIL",     "RCPT", "DATA",
                                                "BDAT", "RSET", "VRFY",     "EXPN", "HELP",
                                                "NOOP", "QUIT", "STARTTLS", "AUTH"};
  static_assert(std::size(kNames) == std::variant_size_v<Command>);
  return kNames[c.index()];
}

Result<Command, CommandError> parse_command(std::string_view line, const ParseContext& ctx) {
  std::string_view verb, rest;
  split_verb(line, verb, rest);
  const size_t limit = iequals(verb, "MAIL")   ? kMaxMailLine
                       : iequals(verb, "RCPT") ? kMaxRcptLine
                                               : kMaxLine;
  if (line.size() > limit) return reply_error(500, "5.5.2", "Line too long");
  if (line.find('\0') != std::string_view::npos)
    return reply_error(500, "5.5.2", "NUL octet in command");

  if (iequals(verb, "EHLO")) return parse_hello(rest, true);
  if (iequals(verb, "HELO")) return parse_hello(rest, false);
  if (iequals(verb, "MAIL")) return parse_mail(rest);
  if (iequals(verb, "RCPT")) return parse_rcpt(rest, ctx);
  if (iequals(verb, "DATA")) return no_argument<Data>(rest, verb);
  if (iequals(verb, "BDAT")) return parse_bdat(rest);
  if (iequals(verb, "RSET")) return no_argument<Rset>(rest, verb);
  if (iequals(verb, "QUIT")) return no_argument<Quit>(rest, verb);
  if (iequals(verb, "STARTTLS")) return no_argument<StartTls>(rest, verb);
  if (iequals(verb, "NOOP")) {
    // NOOP [ SP String ]: the argument is ignored (RFC 5321 section 4.1.1.9).
    if (!valid_text_argument(rest))
      return reply_error(501, "5.5.4", "Invalid characters in the argument");
    return Command{Noop{}};
  }
  if (iequals(verb, "VRFY")) return text_command<Vrfy>(rest, true, verb);
  if (iequals(verb, "EXPN")) return text_command<Expn>(rest, true, verb);
  if (iequals(verb, "HELP")) return text_command<Help>(rest, false, verb);
  if (iequals(verb, "AUTH")) return parse_auth(rest);
  // Obsolete or unsafe commands that RFC 5321 names: recognised, never implemented.
  if (iequals(verb, "SEND") || iequals(verb, "SOML") || iequals(verb, "SAML") ||
      iequals(verb, "TURN") || iequals(verb, "ETRN") || iequals(verb, "ATRN")) {
    return reply_error(502, "5.5.1", "Command not implemented");
  }
  return reply_error(500, "5.5.1", "Command unrecognized");
}

}  // namespace sluice::smtp
