// Replies as operators paste them: from logs, DSNs and forum posts, with or without a code, a
// log prefix before them, continuation lines joined into one. Sans-I/O.
#include <algorithm>
#include <array>

#include "classify/classifier.h"
#include "core/text.h"

namespace sluice::classify {
namespace {

// A character that may stand before a reply code inside a line ("said: 550", "smtp;550",
// "'550", "#550", "(550"): not a digit or a dot, so that addresses and versions are not codes.
bool code_boundary(char c) {
  return c == ' ' || c == ':' || c == ';' || c == '\'' || c == '"' || c == '(' || c == '[' ||
         c == '<' || c == '=' || c == '#' || c == '\t';
}

// Python's smtplib prints a reply as a tuple: "(550, b'5.1.1 <a@b>: User unknown')". The quote
// after "CODE, " (with or without the bytes prefix), npos when there is none.
size_t tuple_quote(std::string_view s, size_t after_code) {
  if (after_code + 2 >= s.size() || s[after_code] != ',' || s[after_code + 1] != ' ')
    return std::string_view::npos;
  size_t q = after_code + 2;
  if (s[q] == 'b' && q + 1 < s.size()) ++q;
  return s[q] == '\'' || s[q] == '"' ? q : std::string_view::npos;
}

// Where a quoted reply that started before `s` closes; s.size() when it does not. A double
// quote (JSON, a library's message) closes at the first unescaped '"' followed by the end of
// the line or by what follows a JSON value (',', '}', ']', ')'). A single quote (Exchange's
// "Remote Server returned '550 …' Original message headers:") closes at the last '\'' after a
// word that the end, a blank or such punctuation follows: "doesn't" goes on, and so does a
// quoted word inside the reply ("Sender 'x' has been blacklisted").
size_t closing_quote(std::string_view s, char quote) {
  if (quote == '\'') {
    for (size_t i = s.size(); i-- > 1;) {
      const size_t k = i + 1;
      if (s[i] == quote && s[i - 1] != ' ' &&
          (k == s.size() || s[k] == ' ' || s[k] == ',' || s[k] == ';' || s[k] == ')' ||
           s[k] == ']' || s[k] == '}'))
        return i;
    }
    return s.size();
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != quote || (i > 0 && s[i - 1] == '\\')) continue;
    size_t k = i + 1;
    while (k < s.size() && s[k] == ' ') ++k;
    if (k == s.size() || s[k] == ',' || s[k] == '}' || s[k] == ']' || s[k] == ')') return i;
  }
  return s.size();
}

std::optional<smtp::EnhancedCode> enhanced_at(std::string_view s, size_t i, size_t* len);

// "错误：550 5.1.1 …": text in Chinese or Japanese puts a full-width colon (U+FF1A) or
// semicolon (U+FF1B) right before a failure's code. Only a failure's, and only when an
// enhanced code or English words follow: "（上限：500 封）", "耗时：300 ms" and "最大：512 KB" are
// numbers in the text.
bool after_fullwidth_colon(std::string_view s, size_t i) {
  if (i < 3 || s[i - 3] != '\xEF' || s[i - 2] != '\xBC' ||
      (s[i - 1] != '\x9A' && s[i - 1] != '\x9B'))
    return false;
  if (i + 4 >= s.size() || (s[i] != '4' && s[i] != '5') || (s[i + 3] != ' ' && s[i + 3] != '-'))
    return false;
  size_t len = 0;
  if (auto e = enhanced_at(s, i + 4, &len); e && e->klass == s[i] - '0') return true;
  size_t letters = 0;
  for (size_t k = i + 4; k < s.size() && static_cast<unsigned char>(s[k]) < 0x80; ++k)
    letters += is_alpha(s[k]);
  return letters >= 3;
}

// A reply code at `i`: [2-5][0-5][0-9] followed by the end, a space, '-' or a tuple's ", '".
bool code_at(std::string_view s, size_t i) {
  if (i + 3 > s.size()) return false;
  if (s[i] < '2' || s[i] > '5' || s[i + 1] < '0' || s[i + 1] > '5' || !is_digit(s[i + 2]))
    return false;
  if (i > 0 && !code_boundary(s[i - 1]) && !after_fullwidth_colon(s, i)) return false;
  return i + 3 == s.size() || s[i + 3] == ' ' || s[i + 3] == '-' ||
         tuple_quote(s, i + 3) != std::string_view::npos;
}

// Where the reply's code stands in a pasted line: at its start, or inside it after what a log
// puts before a reply ("said: 550", "smtp;550", "'550", "#550"), or anywhere when an enhanced
// code of its class follows ("… got 550 5.1.1 …"). A number in prose ("for 300 seconds",
// "expected 250 but got 550") is not one: and a failure's code (4xx, 5xx) wins over a 2xx/3xx
// quoted beside it. npos: no code.
size_t reply_start(std::string_view line) {
  size_t found = std::string_view::npos;
  for (size_t i = 0; i + 3 <= line.size(); ++i) {
    if (!code_at(line, i)) continue;
    bool plausible = i == 0;
    if (!plausible) {
      // After a log's punctuation, spaces aside: "said: 550", "smtp;550", "'550".
      size_t k = i;
      while (k > 0 && line[k - 1] == ' ') --k;
      plausible = (k > 0 && line[k - 1] != ' ' && code_boundary(line[k - 1])) ||
                  after_fullwidth_colon(line, i);
      size_t len = 0;
      if (!plausible && i + 4 < line.size()) {
        auto e = enhanced_at(line, i + 4, &len);
        plausible = e && e->klass == line[i] - '0';
      }
    }
    if (!plausible) continue;
    if (line[i] == '4' || line[i] == '5') return i;
    // A 2xx/3xx inside a line is a reply only when words or its enhanced code follow: "#329
    // (0123456789AB)" is a reference number, not a success. Nor is one glued by a colon to a
    // number, "X=TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=no" (a cipher's key size).
    if (i > 1 && line[i - 1] == ':' && is_digit(line[i - 2])) continue;
    if (i > 0) {
      size_t len = 0;
      const bool words = i + 4 < line.size() && is_alpha(line[i + 4]);
      const auto e = i + 4 < line.size() ? enhanced_at(line, i + 4, &len) : std::nullopt;
      if (!words && !(e && e->klass == line[i] - '0')) continue;
    }
    if (found == std::string_view::npos) found = i;  // a 2xx/3xx: unless a failure follows
  }
  return found;
}

// An enhanced code "C.S.D" at `i`, whole (followed by the end or a space), with class 2, 4 or 5.
std::optional<smtp::EnhancedCode> enhanced_at(std::string_view s, size_t i, size_t* len) {
  size_t end = i;
  while (end < s.size() && (is_digit(s[end]) || s[end] == '.')) ++end;
  if (end == i || (end < s.size() && s[end] != ' ' && s[end] != ',' && s[end] != ')' &&
                   s[end] != ']' && s[end] != ':' && s[end] != ';'))
    return std::nullopt;
  auto e = smtp::EnhancedCode::parse(s.substr(i, end - i));
  if (!e || (e->klass != 2 && e->klass != 4 && e->klass != 5)) return std::nullopt;
  *len = end - i;
  return e;
}

// The stage a log names: Postfix "(in reply to RCPT TO command)", Exim "after RCPT TO:<…>",
// sendmail/Exchange phrasings.
std::optional<Stage> stage_named(std::string_view line) {
  const std::string l = to_lower(line);
  struct Named {
    std::string_view words;
    Stage stage;
  };
  static constexpr std::array<Named, 16> kNamed{{
      {"in reply to end of data", Stage::kEndOfData},
      {"after end of data", Stage::kEndOfData},
      {"after data", Stage::kData},
      {"in reply to data", Stage::kData},
      {"in reply to rcpt", Stage::kRcpt},
      {"after rcpt", Stage::kRcpt},
      {"while sending rcpt", Stage::kRcpt},
      {"in reply to mail", Stage::kMail},
      {"after mail", Stage::kMail},
      {"while sending mail", Stage::kMail},
      {"in reply to ehlo", Stage::kEhlo},
      {"in reply to helo", Stage::kEhlo},
      {"after ehlo", Stage::kEhlo},
      {"in reply to starttls", Stage::kStartTls},
      {"initial server greeting", Stage::kBanner},
      {"after initial connection", Stage::kBanner},
  }};
  for (const auto& n : kNamed) {
    if (l.find(n.words) != std::string::npos) return n.stage;
  }
  return std::nullopt;
}

// Removes "(in reply to … command)" and the continuation prefixes of joined lines
// (" 550-5.1.1 ", " 550 5.1.1 ") from the text; collapses runs of blanks.
std::string clean_text(std::string_view text, std::string_view code,
                       const std::optional<smtp::EnhancedCode>& enhanced) {
  std::string t(text);
  if (const size_t p = to_lower(t).find("(in reply to "); p != std::string::npos) {
    if (const size_t close = t.find(')', p); close != std::string::npos) t.erase(p, close - p + 1);
  }
  if (!code.empty()) {
    // Copied past each continuation prefix, not replaced in place (GCC 12's -Wrestrict
    // misfires on std::string::replace).
    const std::string enh = enhanced ? enhanced->str() : std::string();
    std::string kept;
    size_t from = 0;
    for (size_t p = t.find(code); p != std::string::npos; p = t.find(code, p + 3)) {
      const bool bounded =
          (p == 0 || t[p - 1] == ' ') && p + 3 < t.size() && (t[p + 3] == '-' || t[p + 3] == ' ');
      if (!bounded || p < from) continue;
      size_t end = p + 4;
      if (!enh.empty() && t.compare(end, enh.size(), enh) == 0) end += enh.size();
      kept.append(t, from, p - from);
      kept.push_back(' ');
      from = end;
    }
    kept.append(t, std::min(from, t.size()), std::string::npos);
    t = std::move(kept);
  }
  std::string out;
  for (char c : t) {
    const bool blank = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out.push_back(blank ? ' ' : c);
  }
  return std::string(trim(out));
}

// A client library that prints the reply's words first and its codes after them, labelled
// (PHPMailer: "… Detail: Ratelimit exceeded SMTP code: 451 Additional SMTP info: 4.7.1"): the
// enhanced code after its label. Returns what is left after the label.
std::string_view enhanced_label(std::string_view rest, std::optional<smtp::EnhancedCode>& enhanced,
                                char klass) {
  static constexpr std::string_view kLabel = "additional smtp info:";
  if (rest.size() < kLabel.size() || to_lower(rest.substr(0, kLabel.size())) != kLabel)
    return rest;
  rest = trim(rest.substr(kLabel.size()));
  size_t len = 0;
  if (auto e = enhanced_at(rest, 0, &len); e && e->klass == klass - '0' && !enhanced) {
    enhanced = e;
    rest = trim(rest.substr(len));
  }
  return rest;
}

// The words of a reply whose code came last, or of a line with only a prefix: the prefix,
// from a "Detail:" label on when there is one, without the code's own label ("SMTP code:").
std::string words_before_code(std::string_view context, bool code_followed) {
  const std::string lower = to_lower(context);
  const bool labelled = lower.ends_with("code:");
  if (labelled) context = trim(context.substr(0, context.size() - 5));
  if (lower.ends_with("smtp code:")) context = trim(context.substr(0, context.size() - 4));
  if (const size_t d = lower.find("detail:"); d != std::string::npos && d + 7 <= context.size()) {
    context = trim(context.substr(d + 7));
  } else if (code_followed && !labelled) {
    return {};  // "said: 550": the prefix names the host, not the trouble
  }
  return std::string(context);
}

// What a web page or a log does to a reply's characters, undone: HTML entities ("&lt;a@b&gt;",
// "doesn&#39;t"), typographic quotes ("doesn’t", “…”), no-break spaces, escapes a log or JSON
// writer left in the text (a literal "\r\n" before "550 5.1.1 …") and qmail's underscores for
// blanks. A reply on the wire has none of these.
std::string undo_web_and_log_escapes(std::string_view s) {
  static constexpr std::pair<std::string_view, std::string_view> kSame[] = {
      {"&lt;", "<"},         {"&gt;", ">"},         {"&quot;", "\""},       {"&#34;", "\""},
      {"&#39;", "'"},        {"&#039;", "'"},       {"&#x27;", "'"},        {"&apos;", "'"},
      {"&nbsp;", " "},       {"&#160;", " "},       {"&amp;", "&"},         {"&#38;", "&"},
      {"\xE2\x80\x98", "'"}, {"\xE2\x80\x99", "'"}, {"\xE2\x80\x9C", "\""}, {"\xE2\x80\x9D", "\""},
      {"\xC2\xA0", " "},     {"\\r\\n", " "},       {"\\n", " "},           {"\\r", " "},
      {"\\t", " "},
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    bool replaced = false;
    if (s[i] == '&' || s[i] == '\\' || static_cast<unsigned char>(s[i]) >= 0xC2) {
      for (const auto& [from, to] : kSame) {
        if (s.substr(i, from.size()) == from) {
          out.append(to);
          i += from.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(s[i++]);
  }
  // qmail's log writes a reply's blanks as underscores ("Remote_host_said:_553_sorry,_your_…"):
  // a line with more of them than blanks is such a line.
  const auto underscores = std::count(out.begin(), out.end(), '_');
  if (underscores >= 4 && underscores > std::count(out.begin(), out.end(), ' '))
    std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

// The number after `"key":` in a JSON text (blanks allowed), or -1.
int json_number(std::string_view s, std::string_view key, size_t from = 0) {
  std::string quoted = "\"";
  quoted.append(key).append("\":");
  size_t i = s.find(quoted, from);
  if (i == std::string_view::npos) return -1;
  i += quoted.size();
  while (i < s.size() && s[i] == ' ') ++i;
  int n = -1;
  for (; i < s.size() && is_digit(s[i]) && n < 100000; ++i) n = (n < 0 ? 0 : n * 10) + (s[i] - '0');
  return n;
}

// A log record that keeps a reply's parts in fields (KumoMTA's "response": {"code": 451,
// "enhanced_code": {"class": 4, "subject": 7, "detail": 1}, "content": "…"}): the reply put
// back together as "451 4.7.1 …", or nothing when the line is no such record.
std::optional<std::string> reply_from_fields(std::string_view line) {
  static constexpr std::string_view kContent = "\"content\":";
  size_t c = line.find(kContent);
  if (line.empty() || line.front() != '{' || c == std::string_view::npos) return std::nullopt;
  const int code = json_number(line, "code");
  if (code < 200 || code > 599) return std::nullopt;
  c += kContent.size();
  while (c < line.size() && line[c] == ' ') ++c;
  if (c >= line.size() || line[c] != '"') return std::nullopt;
  std::string out = std::to_string(code);
  if (const size_t e = line.find("\"enhanced_code\":"); e != std::string_view::npos) {
    const int klass = json_number(line, "class", e), subject = json_number(line, "subject", e),
              detail = json_number(line, "detail", e);
    if (klass == code / 100 && subject >= 0 && detail >= 0) {
      const int parts[] = {klass, subject, detail};
      for (size_t k = 0; k < 3; ++k) {
        out += k == 0 ? ' ' : '.';
        out += std::to_string(parts[k]);
      }
    }
  }
  out += ' ';
  for (size_t i = c + 1; i < line.size() && line[i] != '"'; ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) ++i;  // \" and \\ (\r\n were undone before)
    out += line[i];
  }
  return out;
}

}  // namespace

Result<PastedReply> parse_pasted_reply(std::string_view pasted) {
  std::string undone = undo_web_and_log_escapes(trim(pasted));
  if (auto fields = reply_from_fields(undone)) undone = std::move(*fields);
  std::string_view line = trim(undone);
  if (line.size() >= 2 && (line.front() == '"' || line.front() == '\'') &&
      line.back() == line.front())
    line = trim(line.substr(1, line.size() - 2));
  if (line.empty()) return error("an empty reply");
  PastedReply out;
  out.stage = stage_named(line);
  // The reply starts at its code: at the start of the line, or after a log prefix.
  const size_t at = reply_start(line);
  std::string_view code_digits;
  std::string_view rest;
  if (at != std::string_view::npos) {
    code_digits = line.substr(at, 3);
    out.reply.code = static_cast<uint16_t>((line[at] - '0') * 100 + (line[at + 1] - '0') * 10 +
                                           (line[at + 2] - '0'));
    out.context = std::string(trim(line.substr(0, at)));
    rest = line.substr(at + 3);
    if (const size_t q = tuple_quote(line, at + 3); q != std::string_view::npos) {
      // The quoted reply of a tuple, without its closing quote and what follows it.
      rest = line.substr(q + 1);
      const char closing[] = {line[q], ')', '\0'};
      size_t close = rest.rfind(closing);
      if (close == std::string_view::npos) close = rest.rfind(line[q]);
      if (close != std::string_view::npos) rest = rest.substr(0, close);
    } else if (!rest.empty()) {
      rest.remove_prefix(1);  // ' ' or '-'
      // A reply quoted in JSON or a library's message ("response":"550 …","responseCode":550),
      // or in Exchange's NDR: it ends at its closing quote.
      if (at > 0 && (line[at - 1] == '"' || line[at - 1] == '\''))
        rest = rest.substr(0, closing_quote(rest, line[at - 1]));
    }
    rest = trim(rest);
    // "SMTP code:550 msg:550-5.7.1 …": a wrapper names the code, then quotes the reply with
    // its code again. The reply is the quoted one.
    if (const size_t colon = rest.find(':');
        colon != std::string_view::npos && colon > 0 && colon <= 12 &&
        std::all_of(rest.begin(), rest.begin() + colon, is_alpha)) {
      const std::string_view quoted = trim(rest.substr(colon + 1));
      if (quoted.size() > 4 && quoted.substr(0, 3) == code_digits &&
          (quoted[3] == ' ' || quoted[3] == '-'))
        rest = trim(quoted.substr(4));
    }
    size_t len = 0;
    if (auto e = enhanced_at(rest, 0, &len); e && e->klass == line[at] - '0') {
      out.reply.enhanced = e;
      rest = trim(rest.substr(len));
    }
  } else {
    // No code: the reply follows a client library's or a log's "the server response was:"
    // ("Mailbox unavailable. The server response was: Relay access denied" -- .NET's words for
    // the code come first); an enhanced code at the start, or after a prefix, says the class.
    std::string_view scan = line;
    const std::string lower = to_lower(line);
    for (std::string_view marker : {"the server response was:", "remote host said:", " said:"}) {
      if (const size_t m = lower.find(marker); m != std::string::npos) {
        out.context = std::string(trim(line.substr(0, m + marker.size())));
        scan = trim(line.substr(m + marker.size()));
        break;
      }
    }
    rest = scan;
    for (size_t i = 0; i < scan.size(); ++i) {
      if ((i > 0 && !code_boundary(scan[i - 1])) || (scan[i] != '4' && scan[i] != '5')) continue;
      size_t len = 0;
      if (auto e = enhanced_at(scan, i, &len)) {
        out.reply.enhanced = e;
        const std::string_view before = trim(scan.substr(0, i));
        const std::string_view after = trim(scan.substr(i + len));
        // "5.1.1 User unknown" (the words follow), or "No mailbox here by that name. (#5.1.1)"
        // (qmail: the words come first).
        const auto letters = std::count_if(after.begin(), after.end(), is_alpha);
        if (letters >= 3 || before.empty()) {
          if (!before.empty()) {
            if (!out.context.empty()) out.context.push_back(' ');
            out.context.append(before);
          }
          rest = after;
        } else {
          rest = before;
          while (!rest.empty() && (rest.back() == '#' || rest.back() == '(' || rest.back() == ' '))
            rest.remove_suffix(1);
        }
        break;
      }
    }
  }
  if (at != std::string_view::npos) rest = enhanced_label(rest, out.reply.enhanced, line[at]);
  std::string text = clean_text(rest, code_digits, out.reply.enhanced);
  if (text.empty() && !out.context.empty())
    text = words_before_code(out.context, at != std::string_view::npos);
  out.reply.lines.push_back(std::move(text));
  return out;
}

Result<smtp::Reply> parse_reply_line(std::string_view line) {
  auto p = parse_pasted_reply(line);
  if (!p) return Unexpected<Error>{p.error()};
  return std::move(p->reply);
}

}  // namespace sluice::classify
