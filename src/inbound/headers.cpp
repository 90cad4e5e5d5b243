#include "inbound/headers.h"

#include "core/text.h"

namespace sluice::inbound {

namespace {

// Calls fn(value) for each field `name` (case-insensitive) of the header section, first line
// only, until fn returns false.
template <class Fn>
void for_each_field(std::string_view message, std::string_view name, Fn fn) {
  size_t pos = 0;
  while (pos < message.size()) {
    const size_t eol = message.find('\n', pos);
    std::string_view line = message.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;  // end of the header section
    if (line.size() > name.size() && istarts_with(line, name)) {
      std::string_view after = line.substr(name.size());
      while (!after.empty() && (after.front() == ' ' || after.front() == '\t'))
        after.remove_prefix(1);
      if (!after.empty() && after.front() == ':' && !fn(trim(after.substr(1)))) return;
    }
    if (eol == std::string_view::npos) return;
    pos = eol + 1;
  }
}

}  // namespace

std::optional<std::string> take_field(std::string& message, std::string_view name) {
  std::optional<std::string> found;
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find('\n', pos);
    const size_t end = eol == std::string::npos ? message.size() : eol + 1;
    std::string_view line(message.data() + pos, end - pos);
    if (line == "\n" || line == "\r\n" || line == "\r") break;  // end of the header section
    const bool is_field = line.size() > name.size() && istarts_with(line, name) && [&] {
      std::string_view after = line.substr(name.size());
      while (!after.empty() && (after.front() == ' ' || after.front() == '\t'))
        after.remove_prefix(1);
      return !after.empty() && after.front() == ':';
    }();
    if (!is_field) {
      pos = end;
      continue;
    }
    // The field and its continuation lines (starting with a space or a tab).
    size_t stop = end;
    while (stop < message.size() && (message[stop] == ' ' || message[stop] == '\t')) {
      const size_t next = message.find('\n', stop);
      stop = next == std::string::npos ? message.size() : next + 1;
    }
    if (!found) {
      std::string value(message, pos, stop - pos);
      value = value.substr(value.find(':') + 1);
      std::string unfolded;
      for (char c : value) {
        if (c == '\r' || c == '\n') continue;
        unfolded.push_back(c == '\t' ? ' ' : c);
      }
      found = std::string(trim(unfolded));
    }
    message.erase(pos, stop - pos);
  }
  return found;
}

std::optional<std::string_view> header_value(std::string_view message, std::string_view name) {
  std::optional<std::string_view> found;
  for_each_field(message, name, [&](std::string_view v) {
    found = v;
    return false;
  });
  return found;
}

size_t count_fields(std::string_view message, std::string_view name) {
  size_t n = 0;
  for_each_field(message, name, [&](std::string_view) {
    ++n;
    return true;
  });
  return n;
}

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string with_protocol(bool esmtp, bool tls, bool authenticated, bool smtputf8) {
  if (!esmtp) return "SMTP";
  std::string p = smtputf8 ? "UTF8SMTP" : "ESMTP";
  if (tls) p += 'S';
  if (authenticated) p += 'A';
  return p;
}

std::string received_header(const ReceivedInfo& r) {
  // Untrusted text (the EHLO argument) was validated by the parser as a domain or literal.
  const std::string literal =
      r.client_ip.find(':') == std::string::npos ? r.client_ip : "IPv6:" + r.client_ip;
  std::string h = "Received: from " + r.helo + " ([" + literal + "])\r\n\tby " + r.by +
                  " (sluice) with " + r.protocol;
  if (!r.tls.empty()) h += "\r\n\t(" + r.tls + ")";
  h += "\r\n\tid " + r.id;
  if (!r.for_rcpt.empty()) h += "\r\n\tfor <" + r.for_rcpt + ">";
  h += "; " + rfc5322_date(r.when) + "\r\n";
  return h;
}

}  // namespace sluice::inbound
