// ESMTP parameters of MAIL and RCPT (RFC 5321 section 4.1.2):
//   esmtp-param = esmtp-keyword ["=" esmtp-value]
//   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//   esmtp-value = 1*(%d33-60 / %d62-126)   (RFC 6531 adds UTF8-non-ascii)
// A keyword sluice does not know is 555 (RFC 5321 section 4.1.1.11); a known keyword with a bad
// value, or given twice, is 501.
#include "core/text.h"
#include "core/utf8.h"
#include "smtp/command.h"
#include "smtp/xtext.h"

namespace sluice::smtp {
namespace {

struct Param {
  std::string_view keyword;
  std::optional<std::string_view> value;
};

Unexpected<CommandError> bad(std::string_view text) {
  return {CommandError{Reply::make(501, "5.5.4", text)}};
}

Unexpected<CommandError> unknown(std::string_view keyword) {
  return {CommandError{Reply::make(
      555, "5.5.4", "Parameter not recognized or not implemented: " + printable(keyword))}};
}

bool valid_keyword(std::string_view k) {
  if (k.empty() || !is_alnum(k.front())) return false;
  for (char c : k) {
    if (!is_alnum(c) && c != '-') return false;
  }
  return true;
}

bool valid_value(std::string_view v) {
  if (v.empty() || !is_valid_utf8(v)) return false;
  for (unsigned char c : v) {
    if (c < 33 || c == '=' || c == 127) return false;
  }
  return true;
}

// RFC 3461 sections 4.2 and 4.4: decoded ORCPT and ENVID values are printable US-ASCII.
bool printable_ascii(std::string_view v) {
  for (unsigned char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Calls fn(Param) for each parameter; stops at the first error fn or the syntax returns.
template <class Fn>
std::optional<CommandError> for_each_param(std::string_view s, Fn fn) {
  while (!s.empty()) {
    const size_t sp = s.find(' ');
    const std::string_view token = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
    if (token.empty()) continue;  // tolerate repeated spaces
    Param p;
    const size_t eq = token.find('=');
    p.keyword = token.substr(0, eq);
    if (eq != std::string_view::npos) p.value = token.substr(eq + 1);
    if (!valid_keyword(p.keyword) || (p.value && !valid_value(*p.value))) {
      return bad("Syntax error in parameter " + printable(token)).error;
    }
    if (auto err = fn(p)) return err;
  }
  return std::nullopt;
}

std::optional<CommandError> once(bool& seen, std::string_view keyword) {
  if (seen) return bad("Duplicate parameter " + to_upper(keyword)).error;
  seen = true;
  return std::nullopt;
}

std::optional<CommandError> require_value(const Param& p) {
  if (!p.value) return bad(to_upper(p.keyword) + " requires a value").error;
  return std::nullopt;
}

std::optional<CommandError> parse_notify(std::string_view v, Notify& n) {
  // notify-esmtp-value = "NEVER" / 1#notify-list-element ("SUCCESS" / "FAILURE" / "DELAY")
  n.specified = true;
  if (iequals(v, "NEVER")) {
    n.never = true;
    return std::nullopt;
  }
  while (true) {
    const size_t comma = v.find(',');
    const std::string_view item = v.substr(0, comma);
    bool* flag = iequals(item, "SUCCESS")   ? &n.success
                 : iequals(item, "FAILURE") ? &n.failure
                 : iequals(item, "DELAY")   ? &n.delay
                                            : nullptr;
    if (!flag) {
      return bad(iequals(item, "NEVER") ? "NOTIFY=NEVER cannot be combined with other values"
                                        : "NOTIFY takes NEVER or SUCCESS,FAILURE,DELAY")
          .error;
    }
    *flag = true;
    if (comma == std::string_view::npos) return std::nullopt;
    v.remove_prefix(comma + 1);
  }
}

}  // namespace

Result<MailParameters, CommandError> parse_mail_parameters(std::string_view params) {
  MailParameters m;
  bool seen_size = false, seen_body = false, seen_utf8 = false, seen_ret = false,
       seen_envid = false, seen_auth = false;
  auto err = for_each_param(params, [&](const Param& p) -> std::optional<CommandError> {
    if (iequals(p.keyword, "SIZE")) {
      if (auto e = once(seen_size, p.keyword)) return e;
      if (auto e = require_value(p)) return e;
      auto v = parse_u64(*p.value);
      if (!v || p.value->size() > 20) return bad("SIZE takes a number of octets").error;
      m.size = *v;
    } else if (iequals(p.keyword, "BODY")) {
      if (auto e = once(seen_body, p.keyword)) return e;
      if (auto e = require_value(p)) return e;
      if (iequals(*p.value, "7BIT")) {
        m.body = Body::k7Bit;
      } else if (iequals(*p.value, "8BITMIME")) {
        m.body = Body::k8BitMime;
      } else if (iequals(*p.value, "BINARYMIME")) {
        m.body = Body::kBinaryMime;
      } else {
        return bad("BODY takes 7BIT, 8BITMIME or BINARYMIME").error;
      }
    } else if (iequals(p.keyword, "SMTPUTF8")) {
      if (auto e = once(seen_utf8, p.keyword)) return e;
      if (p.value) return bad("SMTPUTF8 takes no value").error;
      m.smtputf8 = true;
    } else if (iequals(p.keyword, "RET")) {
      if (auto e = once(seen_ret, p.keyword)) return e;
      if (auto e = require_value(p)) return e;
      if (iequals(*p.value, "FULL")) {
        m.ret = Ret::kFull;
      } else if (iequals(*p.value, "HDRS")) {
        m.ret = Ret::kHeaders;
      } else {
        return bad("RET takes FULL or HDRS").error;
      }
    } else if (iequals(p.keyword, "ENVID")) {
      if (auto e = once(seen_envid, p.keyword)) return e;
      if (auto e = require_value(p)) return e;
      // RFC 3461 section 4.4: at most 100 characters, printable ASCII once decoded.
      auto v = xtext_decode(*p.value);
      if (!v || p.value->size() > 100)
        return bad("ENVID must be xtext of at most 100 characters").error;
      if (!printable_ascii(*v)) return bad("ENVID must decode to printable ASCII").error;
      m.envid = std::move(*v);
    } else if (iequals(p.keyword, "AUTH")) {
      if (auto e = once(seen_auth, p.keyword)) return e;
      if (auto e = require_value(p)) return e;
      auto v = xtext_decode(*p.value);
      if (!v) return bad("AUTH= must be xtext or <>").error;
      m.auth = std::move(*v);
    } else {
      return unknown(p.keyword).error;
    }
    return std::nullopt;
  });
  if (err) return Unexpected<CommandError>{std::move(*err)};
  return m;
}

Result<RcptParameters, CommandError> parse_rcpt_parameters(std::string_view params) {
  RcptParameters r;
  bool seen_notify = false, seen_orcpt = false;
  auto err = for_each_param(params, [&](const Param& p) -> std::optional<CommandError> {
    if (iequals(p.keyword, "NOTIFY")) {
      if (auto e = once(seen_notify, p.keyword)) return e;
      if (auto e = require_value(p)) return e;
      return parse_notify(*p.value, r.notify);
    }
    if (iequals(p.keyword, "ORCPT")) {
      if (auto e = once(seen_orcpt, p.keyword)) return e;
      if (auto e = require_value(p)) return e;
      // orcpt-value = addr-type ";" xtext; at most 500 characters (RFC 3461 section 4.2).
      const size_t semi = p.value->find(';');
      if (semi == std::string_view::npos || semi == 0 || p.value->size() > 500) {
        return bad("ORCPT takes addr-type;xtext of at most 500 characters").error;
      }
      const std::string_view type = p.value->substr(0, semi);
      if (!valid_keyword(type)) return bad("ORCPT address type is not an atom").error;
      // RFC 6533's "utf-8" type carries utf-8-addr-xtext: kept as sent, not xtext-decoded.
      const std::string_view raw = p.value->substr(semi + 1);
      auto addr = iequals(type, "utf-8") ? std::optional<std::string>(raw) : xtext_decode(raw);
      if (!addr || addr->empty()) return bad("ORCPT address must be non-empty xtext").error;
      // It goes into DSNs as a field: decoded, it must be printable, never control octets such
      // as CR and LF (the utf-8 type is kept as sent, which valid_value already checked).
      if (!iequals(type, "utf-8") && !printable_ascii(*addr))
        return bad("ORCPT address must decode to printable ASCII").error;
      r.orcpt = OriginalRecipient{std::string(type), std::move(*addr)};
      return std::nullopt;
    }
    return unknown(p.keyword).error;
  });
  if (err) return Unexpected<CommandError>{std::move(*err)};
  return r;
}

}  // namespace sluice::smtp
