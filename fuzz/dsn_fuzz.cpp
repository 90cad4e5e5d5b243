// Fuzzes the DSN builder (src/bounce/dsn.cpp) with values from outside (sender, ENVID, ORCPT, the
// receiver's diagnostic, the remote host): the report part must have CRLF line endings only, no
// line over 998 octets, and no field that the values did not come in as.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bounce/dsn.h"

namespace {

// The next NUL-separated piece of the input.
std::string take(std::string_view& in) {
  const size_t z = in.find('\0');
  std::string piece(in.substr(0, z));
  in = z == std::string_view::npos ? std::string_view() : in.substr(z + 1);
  return piece;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  sluice::spool::MessageMeta m;
  m.sender = take(in);
  m.envid = take(in);
  sluice::bounce::DsnInput d;
  d.original = &m;
  d.reporting_mta = "mta.example.net";
  sluice::bounce::RecipientStatus r;
  r.address = take(in);
  r.orcpt_type = "rfc822";
  r.orcpt = take(in);
  r.action = "failed";
  r.status = "5.0.0";
  r.remote_mta = take(in);
  r.diagnostic = take(in);
  d.recipients.push_back(r);
  const std::string body = "Subject: x\r\n\r\nbody\r\n";
  d.original_body = body;
  const std::string dsn = sluice::bounce::build_dsn(d);
  const std::string_view report =
      std::string_view(dsn).substr(0, dsn.find("Content-Type: message/rfc822"));
  size_t line_start = 0;
  for (size_t i = 0; i < report.size(); ++i) {
    if (report[i] == '\n' && (i == 0 || report[i - 1] != '\r')) std::abort();
    if (report[i] == '\r' && (i + 1 >= report.size() || report[i + 1] != '\n')) std::abort();
    if (report[i] == '\n') {
      if (i - 1 - line_start > 998) std::abort();
      line_start = i + 1;
    }
  }
  // Fields a value could forge if CR LF got through.
  if (report.find("\r\nX-Forged:") != std::string_view::npos) std::abort();
  return 0;
}
