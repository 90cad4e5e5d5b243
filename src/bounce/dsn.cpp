#include "bounce/dsn.h"

#include <ctime>

#include "core/text.h"

namespace sluice::bounce {
namespace {

std::string date(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

// The header section of a message: up to and including the empty line.
std::string_view headers_of(std::string_view body) {
  const size_t end = body.find("\r\n\r\n");
  return end == std::string_view::npos ? body : body.substr(0, end + 4);
}

// RFC 5322 section 2.1.1: a line is at most 998 octets without its CRLF.
constexpr size_t kMaxLine = 998;

// A header field (or a field of the delivery-status part, RFC 3464 section 2.1.1) whose name or
// value came from outside: control octets (CR and LF above all: they would start fields of their
// own) become spaces, and the line is folded at a space, or cut where it has none, so that no
// line is longer than 998 octets.
std::string field(std::string_view name, std::string_view value) {
  std::string line;
  for (std::string_view part : {name, std::string_view(": "), value}) {
    for (char c : part) {
      const auto u = static_cast<unsigned char>(c);
      line.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
    }
  }
  std::string out;
  std::string_view rest = line;
  size_t lead = 0;  // 1 when this line needs a space put in front to be a continuation
  while (lead + rest.size() > kMaxLine) {
    const size_t room = kMaxLine - lead;
    // Fold before the last space that keeps this line short enough (a continuation line starts
    // with that space, RFC 5322 section 2.2.3); never inside the field's name.
    size_t cut = rest.rfind(' ', room);
    if (cut == std::string_view::npos || cut == 0 || (out.empty() && cut <= name.size() + 1)) {
      cut = room;  // no space to fold at: cut in the word, not inside a UTF-8 character
      while (cut > 1 && (static_cast<unsigned char>(rest[cut]) & 0xC0) == 0x80) --cut;
      if (cut == 1) cut = room;
    }
    if (lead) out.push_back(' ');
    out.append(rest.substr(0, cut));
    out += "\r\n";
    rest.remove_prefix(cut);
    lead = rest.front() == ' ' ? 0 : 1;
  }
  if (lead) out.push_back(' ');
  out.append(rest);
  out += "\r\n";
  return out;
}

}  // namespace

bool wants_failure_notice(uint8_t notify) {
  if (notify == 0) return true;  // not specified: failures are reported
  return (notify & spool::kNotifyFailure) != 0;
}

std::string build_dsn(const DsnInput& in) {
  const spool::MessageMeta& m = *in.original;
  const std::string boundary = spool::format_id(m.id) + "/" + in.reporting_mta;
  bool delayed_only = true;
  for (const auto& r : in.recipients) delayed_only = delayed_only && r.action == "delayed";

  std::string out;
  out += "From: Mail Delivery System <MAILER-DAEMON@" + in.reporting_mta + ">\r\n";
  out += field("To", "<" + m.sender + ">");
  out += delayed_only ? "Subject: Delayed Mail (still being retried)\r\n"
                      : "Subject: Undelivered Mail Returned to Sender\r\n";
  out += "Date: " + date(in.now_ms) + "\r\n";
  out += "Auto-Submitted: auto-replied\r\n";  // RFC 3834: never answer this automatically
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" +
         boundary + "\"\r\n\r\n";
  out += "This is a MIME-encapsulated message.\r\n\r\n";

  out += "--" + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: 8bit\r\n\r\n";
  out += "This is the mail system at host " + in.reporting_mta + ".\r\n\r\n";
  out += delayed_only ? "Your message has not been delivered yet; sluice keeps trying.\r\n\r\n"
                      : "Your message could not be delivered to one or more recipients.\r\n\r\n";
  // Lines of text, folded like fields (the diagnostic is the receiver's words).
  for (const auto& r : in.recipients) out += field("<" + r.address + ">", r.diagnostic);
  out += "\r\n";

  out += "--" + boundary + "\r\nContent-Type: message/delivery-status\r\n\r\n";
  out += "Reporting-MTA: dns; " + in.reporting_mta + "\r\n";
  out += "X-Sluice-Queue-ID: " + spool::format_id(m.id) + "\r\n";
  if (!m.envid.empty()) out += field("Original-Envelope-Id", m.envid);
  out += "Arrival-Date: " + date(m.received_ms) + "\r\n";
  for (const auto& r : in.recipients) {
    out += "\r\n";
    if (!r.orcpt_type.empty())
      out += field("Original-Recipient", r.orcpt_type + "; " + r.orcpt);
    out += field("Final-Recipient", "rfc822; " + r.address);
    out += "Action: " + r.action + "\r\n";
    out += "Status: " + r.status + "\r\n";
    if (!r.remote_mta.empty()) out += field("Remote-MTA", "dns; " + r.remote_mta);
    out += field("Diagnostic-Code", "smtp; " + r.diagnostic);
    out += "Last-Attempt-Date: " + date(in.now_ms) + "\r\n";
  }
  out += "\r\n";

  if (m.ret == spool::DsnRet::kHeaders) {
    out += "--" + boundary + "\r\nContent-Type: text/rfc822-headers\r\n\r\n";
    out += headers_of(in.original_body);
  } else {
    out += "--" + boundary + "\r\nContent-Type: message/rfc822\r\n\r\n";
    out += in.original_body;
  }
  if (!out.ends_with("\r\n")) out += "\r\n";
  out += "--" + boundary + "--\r\n";
  return out;
}

}  // namespace sluice::bounce
