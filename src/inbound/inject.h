// The HTTP injection API's request, in KumoMTA's shape (POST /api/inject/v1; doc/http.md), and
// the messages it makes: one per recipient, each its own RFC 5322 message.
//
//   {"envelope_sender": "a@example.org",
//    "content": "Subject: hi {{ name }}\n\nraw RFC 5322 text"  |  {builder, below},
//    "recipients": [{"email": "b@example.net", "name": "B", "substitutions": {"name": "B"}}],
//    "substitutions": {…},            // for every recipient, under each one's own
//    "tenant": "acme", "campaign": "spring"}   // sluice's own tags (doc/config.md "Egress")
//
// The builder object: text_body, html_body, amp_html_body, headers {Name: value}, from {email,
// name}, reply_to {email, name}, subject, attachments [{data, content_type, base64, file_name,
// content_id}] (content_id: inline, in a multipart/related with the HTML). Bodies are
// quoted-printable (UTF-8), attachments base64; non-ASCII header values become RFC 2047
// encoded-words; a To: header is made from the recipient when the request has none.
//
// Templates: a documented subset of Jinja — `{{ name }}`, `{{ a.b }}`, and the filters
// `| default("x")`, `| upper`, `| lower`, `| trim`; a name no substitution defines renders as
// nothing (as Jinja's default undefined). Values are HTML-escaped in html_body and
// amp_html_body. Substitutions apply to the raw content string, the bodies, the subject and the
// header values (not attachments). `{% … %}` blocks are refused (422), never passed through.
//
// Pure: no I/O; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::inbound {

struct InjectRecipient {
  std::string email;
  std::string name;
  std::map<std::string, std::string> substitutions;
};

struct InjectAttachment {
  std::string data;  // decoded octets
  std::string content_type = "application/octet-stream";
  std::string file_name;
  std::string content_id;
};

struct InjectContent {
  std::optional<std::string> raw;  // a complete message
  std::optional<std::string> text_body, html_body, amp_html_body, subject;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::pair<std::string, std::string>> from, reply_to;  // email, name
  std::vector<InjectAttachment> attachments;
};

struct InjectRequest {
  std::string envelope_sender;  // "" = the null sender
  InjectContent content;
  std::vector<InjectRecipient> recipients;
  std::map<std::string, std::string> substitutions;
  std::string tenant, campaign;
};

// The start of the error for a body that is not JSON at all (400; other errors are 422).
inline constexpr std::string_view kNotJson = "the body is not JSON";

// Parses and validates the JSON body; the error says what is wrong (a 422 or 400 for the
// client). `max_recipients` bounds the request.
Result<InjectRequest> parse_inject_request(std::string_view json, size_t max_recipients);

// Renders `text` with the substitutions (recipient's over the request's). `html`: values are
// HTML-escaped. An error names an unsupported construct.
Result<std::string> render_template(std::string_view text,
                                    const std::map<std::string, std::string>& vars, bool html);

// The message for one recipient: CRLF line ends; lines over 998 octets in a raw content are an
// error (the client must fold them: folding a body changes it); `boundary_seed` makes the MIME
// boundaries (unique per message).
Result<std::string> build_message(const InjectRequest& req, const InjectRecipient& rcpt,
                                  uint64_t boundary_seed);

}  // namespace sluice::inbound
