#include "inbound/inject.h"

#include <boost/json.hpp>
#include <cstdio>

#include "core/base64.h"
#include "core/text.h"
#include "smtp/address.h"

namespace sluice::inbound {
namespace json = boost::json;

namespace {

Unexpected<Error> fail(std::string message) {
  return Unexpected<Error>{Error{std::move(message)}};
}

// A substitution value as text: strings as they are, numbers and booleans as JSON writes them;
// objects flatten into "key.sub" names.
void flatten(const json::value& v, const std::string& name, std::map<std::string, std::string>& out) {
  if (v.is_string()) {
    out[name] = std::string(v.as_string());
  } else if (v.is_object()) {
    for (const auto& [k, sub] : v.as_object()) flatten(sub, name + "." + std::string(k), out);
  } else if (!v.is_null()) {
    out[name] = json::serialize(v);
  }
}

Result<std::map<std::string, std::string>> substitutions(const json::object& o, const char* key) {
  std::map<std::string, std::string> out;
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return out;
  if (!v->is_object()) return fail(std::string(key) + " must be an object of name: value");
  for (const auto& [k, sub] : v->as_object()) flatten(sub, std::string(k), out);
  return out;
}

Result<std::string> string_field(const json::object& o, const char* key, bool required) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) return fail(std::string(key) + " is required");
    return std::string();
  }
  if (!v->is_string()) return fail(std::string(key) + " must be a string");
  return std::string(v->as_string());
}

// A header value or name must stay on its line: a CR or LF in it would add header fields.
bool one_line(std::string_view s) {
  return s.find_first_of("\r\n") == std::string_view::npos;
}

Result<std::optional<std::pair<std::string, std::string>>> address_field(const json::object& o,
                                                                         const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<std::pair<std::string, std::string>>();
  if (!v->is_object()) return fail(std::string(key) + " must be {\"email\": …, \"name\": …}");
  auto email = string_field(v->as_object(), "email", true);
  auto name = string_field(v->as_object(), "name", false);
  if (!email) return fail(std::string(key) + "." + email.error().message);
  if (!name) return fail(std::string(key) + "." + name.error().message);
  if (!smtp::parse_mailbox(*email)) return fail(std::string(key) + ".email is not an address: " + *email);
  if (!one_line(*name)) return fail(std::string(key) + ".name must not contain line breaks");
  return std::optional<std::pair<std::string, std::string>>(std::make_pair(*email, *name));
}

Result<InjectContent> parse_content(const json::value& v) {
  InjectContent c;
  if (v.is_string()) {
    c.raw = std::string(v.as_string());
    return c;
  }
  if (!v.is_object()) return fail("content must be a message (a string) or a builder object");
  const json::object& o = v.as_object();
  auto opt = [&](const char* key, std::optional<std::string>& out) -> Status {
    const json::value* f = o.if_contains(key);
    if (!f || f->is_null()) return ok_status();
    if (!f->is_string()) return fail(std::string("content.") + key + " must be a string");
    out = std::string(f->as_string());
    return ok_status();
  };
  for (auto [key, field] : {std::pair{"text_body", &c.text_body}, {"html_body", &c.html_body},
                            {"amp_html_body", &c.amp_html_body}, {"subject", &c.subject}}) {
    if (auto st = opt(key, *field); !st) return Unexpected<Error>{st.error()};
  }
  if (c.subject && !one_line(*c.subject)) return fail("content.subject must be one line");
  if (const json::value* h = o.if_contains("headers"); h && !h->is_null()) {
    if (!h->is_object()) return fail("content.headers must be an object of Name: value");
    for (const auto& [name, value] : h->as_object()) {
      const std::string n(name);
      const bool name_ok = !n.empty() && std::all_of(n.begin(), n.end(), [](char ch) {
        return ch > 32 && ch < 127 && ch != ':';
      });
      if (!name_ok) return fail("content.headers: \"" + n + "\" is not a header field name");
      if (!value.is_string()) return fail("content.headers." + n + " must be a string");
      if (!one_line(value.as_string()))
        return fail("content.headers." + n + " must not contain line breaks");
      c.headers.emplace_back(n, std::string(value.as_string()));
    }
  }
  auto from = address_field(o, "from");
  if (!from) return fail("content." + from.error().message);
  c.from = *from;
  auto reply_to = address_field(o, "reply_to");
  if (!reply_to) return fail("content." + reply_to.error().message);
  c.reply_to = *reply_to;
  if (const json::value* a = o.if_contains("attachments"); a && !a->is_null()) {
    if (!a->is_array()) return fail("content.attachments must be an array");
    for (const auto& item : a->as_array()) {
      if (!item.is_object()) return fail("content.attachments: each is an object");
      const json::object& ao = item.as_object();
      InjectAttachment att;
      auto data = string_field(ao, "data", true);
      if (!data) return fail("content.attachments: " + data.error().message);
      const json::value* b64 = ao.if_contains("base64");
      if (b64 && b64->is_bool() && b64->as_bool()) {
        auto decoded = base64_decode(*data);
        if (!decoded) return fail("content.attachments: data is not valid base64");
        att.data = std::move(*decoded);
      } else {
        att.data = std::move(*data);
      }
      for (auto [key, field] : {std::pair{"content_type", &att.content_type},
                                {"file_name", &att.file_name}, {"content_id", &att.content_id}}) {
        auto s = string_field(ao, key, false);
        if (!s) return fail("content.attachments: " + s.error().message);
        if (!s->empty()) *field = std::move(*s);
        if (!one_line(*field) || field->find('"') != std::string::npos)
          return fail(std::string("content.attachments: ") + key + " must be one line, no quotes");
      }
      c.attachments.push_back(std::move(att));
    }
  }
  return c;
}

// ---- encodings ----

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 128; });
}

// CRLF line ends whatever came (LF alone, or CRLF).
std::string crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;  // the LF adds it
    if (s[i] == '\n' || s[i] == '\r') {
      out += "\r\n";
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

// Quoted-printable (RFC 2045 section 6.7) of UTF-8 text whose lines end in CRLF.
std::string quoted_printable(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  size_t col = 0;
  auto put = [&](std::string_view piece) {
    if (col + piece.size() > 75) {  // a soft line break keeps lines within 76
      out += "=\r\n";
      col = 0;
    }
    out += piece;
    col += piece.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      out += "\r\n";
      col = 0;
      ++i;
      continue;
    }
    const bool line_end = i + 1 == text.size() || text[i + 1] == '\r';
    const bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end);
    if (plain) {
      const char ch = static_cast<char>(c);
      put(std::string_view(&ch, 1));
    } else {
      const char enc[3] = {'=', hex[c >> 4], hex[c & 15]};
      put(std::string_view(enc, 3));
    }
  }
  return out;
}

std::string base64_lines(std::string_view data) {
  const std::string b = base64_encode(data);
  std::string out;
  for (size_t i = 0; i < b.size(); i += 76) out += b.substr(i, 76) + "\r\n";
  return out;
}

// A header value: as is when ASCII; else RFC 2047 encoded-words ("B", UTF-8), each within 75
// characters, never splitting a UTF-8 sequence, folded onto continuation lines.
std::string header_value(std::string_view v) {
  if (is_ascii(v)) return std::string(v);
  std::string out;
  size_t i = 0;
  while (i < v.size()) {
    // 39 octets are 52 base64 characters: with "Subject: " and the markers, within 78.
    size_t n = std::min<size_t>(39, v.size() - i);
    while (n > 0 && i + n < v.size() && (static_cast<unsigned char>(v[i + n]) & 0xC0) == 0x80) --n;
    if (n == 0) n = std::min<size_t>(39, v.size() - i);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64_encode(v.substr(i, n)) + "?=";
    i += n;
  }
  return out;
}

// "Name <email>" with the display name quoted or encoded as needed.
std::string mailbox_header(const std::string& email, const std::string& name) {
  if (name.empty()) return email;
  if (!is_ascii(name)) return header_value(name) + " <" + email + ">";
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return quoted + "\" <" + email + ">";
}

struct Part {
  std::string headers;  // each line CRLF-terminated
  std::string body;
};

Part text_part(const std::string& type, const std::string& text) {
  return Part{"Content-Type: " + type + "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
              quoted_printable(crlf(text))};
}

Part multipart(const std::string& subtype, const std::vector<Part>& parts, const std::string& boundary) {
  Part m;
  m.headers = "Content-Type: multipart/" + subtype + "; boundary=\"" + boundary + "\"\r\n";
  for (const auto& p : parts) m.body += "--" + boundary + "\r\n" + p.headers + "\r\n" + p.body + "\r\n";
  m.body += "--" + boundary + "--\r\n";
  return m;
}

Part attachment_part(const InjectAttachment& a) {
  Part p;
  const std::string name = a.file_name.empty() ? "" : "; name=\"" + a.file_name + "\"";
  p.headers = "Content-Type: " + a.content_type + name + "\r\nContent-Transfer-Encoding: base64\r\n";
  if (!a.content_id.empty()) {
    p.headers += "Content-ID: <" + a.content_id + ">\r\nContent-Disposition: inline\r\n";
  } else {
    p.headers += "Content-Disposition: attachment" +
                 (a.file_name.empty() ? std::string() : "; filename=\"" + a.file_name + "\"") +
                 "\r\n";
  }
  p.body = base64_lines(a.data);
  return p;
}

bool has_header(const std::vector<std::pair<std::string, std::string>>& h, std::string_view name) {
  for (const auto& [n, v] : h) {
    if (iequals(n, name)) return true;
  }
  return false;
}

// One `{{ … }}` expression: a name and filters.
Result<std::string> evaluate(std::string_view expr, const std::map<std::string, std::string>& vars) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  bool quoted = false;
  char quote = 0;
  for (size_t i = 0; i < expr.size(); ++i) {
    if (quoted) {
      if (expr[i] == quote) quoted = false;
    } else if (expr[i] == '"' || expr[i] == '\'') {
      quoted = true;
      quote = expr[i];
    } else if (expr[i] == '|') {
      pieces.push_back(trim(expr.substr(start, i - start)));
      start = i + 1;
    }
  }
  pieces.push_back(trim(expr.substr(start)));
  const std::string_view name = pieces[0];
  const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
  if (!name_ok) return fail("template: {{ " + std::string(expr) + " }}: only names, a.b and filters");
  auto it = vars.find(std::string(name));
  std::optional<std::string> value;
  if (it != vars.end()) value = it->second;
  for (size_t i = 1; i < pieces.size(); ++i) {
    const std::string_view f = pieces[i];
    if (f == "upper" || f == "lower") {
      std::string v = value.value_or("");
      for (char& c : v) c = static_cast<char>(f == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                                           : std::tolower(static_cast<unsigned char>(c)));
      value = v;
    } else if (f == "trim") {
      value = std::string(trim(value.value_or("")));
    } else if (f.starts_with("default(") && f.ends_with(")") && f.size() >= 11 &&
               (f[8] == '"' || f[8] == '\'') && f[f.size() - 2] == f[8]) {
      if (!value || value->empty()) value = std::string(f.substr(9, f.size() - 11));
    } else {
      return fail("template: filter \"" + std::string(f) +
                  "\" is not supported (default(\"…\"), upper, lower, trim)");
    }
  }
  return value.value_or("");
}

}  // namespace

Result<std::string> render_template(std::string_view text,
                                    const std::map<std::string, std::string>& vars, bool html) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find('{', pos);
    if (open == std::string_view::npos || open + 1 >= text.size()) {
      out += text.substr(pos);
      break;
    }
    const char kind = text[open + 1];
    if (kind != '{' && kind != '%' && kind != '#') {
      out += text.substr(pos, open + 1 - pos);
      pos = open + 1;
      continue;
    }
    out += text.substr(pos, open - pos);
    if (kind == '%') return fail("template: {% … %} blocks are not supported (only {{ name }})");
    const std::string_view close_mark = kind == '{' ? "}}" : "#}";
    const size_t close = text.find(close_mark, open + 2);
    if (close == std::string_view::npos) return fail("template: an unclosed {{ or {#");
    if (kind == '{') {
      auto v = evaluate(text.substr(open + 2, close - open - 2), vars);
      if (!v) return v;
      out += html ? html_escape(*v) : *v;
    }
    pos = close + 2;
  }
  return out;
}

Result<InjectRequest> parse_inject_request(std::string_view body, size_t max_recipients) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) return fail(std::string(kNotJson) + ": " + ec.message());
  if (!doc.is_object()) return fail("the body must be a JSON object");
  const json::object& o = doc.as_object();
  InjectRequest r;
  auto sender = string_field(o, "envelope_sender", true);
  if (!sender) return Unexpected<Error>{sender.error()};
  r.envelope_sender = *sender;
  if (!r.envelope_sender.empty() && !smtp::parse_mailbox(r.envelope_sender))
    return fail("envelope_sender is not an address: " + r.envelope_sender);
  const json::value* content = o.if_contains("content");
  if (!content) return fail("content is required");
  auto c = parse_content(*content);
  if (!c) return Unexpected<Error>{c.error()};
  r.content = std::move(*c);
  const json::value* rcpts = o.if_contains("recipients");
  if (!rcpts || !rcpts->is_array() || rcpts->as_array().empty())
    return fail("recipients must be a non-empty array of {\"email\": …}");
  if (rcpts->as_array().size() > max_recipients)
    return fail("too many recipients: " + std::to_string(rcpts->as_array().size()) + " (at most " +
                std::to_string(max_recipients) + " per request)");
  for (const auto& item : rcpts->as_array()) {
    if (!item.is_object()) return fail("recipients: each is an object with an email");
    InjectRecipient rc;
    auto email = string_field(item.as_object(), "email", true);
    if (!email) return fail("recipients: " + email.error().message);
    rc.email = *email;
    if (!smtp::parse_mailbox(rc.email)) return fail("recipients: not an address: " + rc.email);
    auto name = string_field(item.as_object(), "name", false);
    if (!name) return fail("recipients: " + name.error().message);
    if (!one_line(*name)) return fail("recipients: name must not contain line breaks");
    rc.name = *name;
    auto subs = substitutions(item.as_object(), "substitutions");
    if (!subs) return fail("recipients: " + subs.error().message);
    rc.substitutions = std::move(*subs);
    r.recipients.push_back(std::move(rc));
  }
  auto subs = substitutions(o, "substitutions");
  if (!subs) return Unexpected<Error>{subs.error()};
  r.substitutions = std::move(*subs);
  for (auto [key, field] : {std::pair{"tenant", &r.tenant}, {"campaign", &r.campaign}}) {
    auto s = string_field(o, key, false);
    if (!s) return Unexpected<Error>{s.error()};
    *field = std::move(*s);
  }
  return r;
}

Result<std::string> build_message(const InjectRequest& req, const InjectRecipient& rcpt,
                                  uint64_t boundary_seed) {
  std::map<std::string, std::string> vars = req.substitutions;
  for (const auto& [k, v] : rcpt.substitutions) vars[k] = v;
  const InjectContent& c = req.content;
  if (c.raw) {
    auto text = render_template(*c.raw, vars, false);
    if (!text) return text;
    std::string msg = crlf(*text);
    size_t line = 1, start = 0;
    while (start < msg.size()) {
      const size_t end = msg.find("\r\n", start);
      const size_t len = (end == std::string::npos ? msg.size() : end) - start;
      if (len > 998)
        return fail("content: line " + std::to_string(line) + " is " + std::to_string(len) +
                    " octets, over the 998 that RFC 5322 allows: fold it");
      if (end == std::string::npos) break;
      start = end + 2;
      ++line;
    }
    if (!msg.empty() && !msg.ends_with("\r\n")) msg += "\r\n";
    return msg;
  }
  auto render = [&](const std::optional<std::string>& s, bool html) -> Result<std::string> {
    return s ? render_template(*s, vars, html) : Result<std::string>(std::string());
  };
  std::string head;
  auto add = [&](std::string_view name, std::string_view value) {
    head += std::string(name) + ": " + header_value(value) + "\r\n";
  };
  if (c.from && !has_header(c.headers, "From")) {
    head += "From: " + mailbox_header(c.from->first, c.from->second) + "\r\n";
  }
  if (c.reply_to && !has_header(c.headers, "Reply-To"))
    head += "Reply-To: " + mailbox_header(c.reply_to->first, c.reply_to->second) + "\r\n";
  if (!has_header(c.headers, "To")) head += "To: " + mailbox_header(rcpt.email, rcpt.name) + "\r\n";
  if (c.subject && !has_header(c.headers, "Subject")) {
    auto s = render(c.subject, false);
    if (!s) return s;
    add("Subject", *s);
  }
  for (const auto& [name, value] : c.headers) {
    auto v = render_template(value, vars, false);
    if (!v) return v;
    if (!one_line(*v)) return fail("content.headers." + name + ": a substitution added a line break");
    add(name, *v);
  }
  head += "MIME-Version: 1.0\r\n";

  std::vector<Part> alternatives;
  for (auto [body, type, html] : {std::tuple{&c.text_body, "text/plain", false},
                                  {&c.html_body, "text/html", true},
                                  {&c.amp_html_body, "text/x-amp-html", true}}) {
    if (!*body) continue;
    auto text = render(*body, html);
    if (!text) return text;
    alternatives.push_back(text_part(type, *text));
  }
  char seed[32];
  std::snprintf(seed, sizeof seed, "%016llx", static_cast<unsigned long long>(boundary_seed));
  auto boundary = [&](int level) { return "=_sluice_" + std::string(seed) + "_" + std::to_string(level); };
  Part body = alternatives.empty()                ? text_part("text/plain", "")
              : alternatives.size() == 1          ? alternatives.front()
                                                  : multipart("alternative", alternatives, boundary(1));
  std::vector<Part> inline_parts{body}, attached{};
  for (const auto& a : c.attachments) (a.content_id.empty() ? attached : inline_parts).push_back(attachment_part(a));
  if (inline_parts.size() > 1) body = multipart("related", inline_parts, boundary(2));
  if (!attached.empty()) {
    attached.insert(attached.begin(), body);
    body = multipart("mixed", attached, boundary(3));
  }
  std::string msg = head + body.headers + "\r\n" + body.body;
  if (!msg.ends_with("\r\n")) msg += "\r\n";
  return msg;
}

}  // namespace sluice::inbound
