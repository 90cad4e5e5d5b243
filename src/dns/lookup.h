// Blocking DNS lookups for command-line tools (`sluice auth-check`) and the TLS policy workers'
// own threads (src/tlspolicy/): one question at a time with c-ares, answers as text. Never on
// the I/O threads (src/dns/resolver.h is asynchronous and cached). Not thread-safe: one Lookup
// per thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/units.h"
#include "core/status.h"
#include "dns/destination.h"

namespace sluice::dns {

struct Answer {
  enum class Status { kOk, kNoData, kNxDomain, kFailed };
  Status status = Status::kFailed;
  std::vector<std::string> values;  // TXT: each record's strings joined; A/AAAA: addresses;
                                    // MX: host names by preference; PTR: names
  std::string error;                // kFailed: what went wrong (SERVFAIL, timeout, …)
  std::vector<Tlsa> tlsa;           // tlsa(): the records
  bool authenticated = false;       // tlsa(), mx_dnssec(): the resolver's AD bit (validated)
  bool ok() const { return status == Status::kOk; }
  bool missing() const { return status == Status::kNoData || status == Status::kNxDomain; }
};

class Lookup {
 public:
  // nameservers: "127.0.0.1:5353"; empty: the system's.
  static Result<std::unique_ptr<Lookup>> create(const std::vector<std::string>& nameservers,
                                                config::Duration timeout);
  ~Lookup();
  Lookup(const Lookup&) = delete;
  Lookup& operator=(const Lookup&) = delete;

  Answer txt(const std::string& name);
  Answer a(const std::string& name);
  Answer aaaa(const std::string& name);
  Answer mx(const std::string& name);
  Answer ptr(const std::string& address);  // "192.0.2.1" or "2001:db8::1"
  // Asked with the AD bit: `authenticated` says the resolver validated the answer (DNSSEC). Only
  // a resolver on this host (or one reached over a trusted path) should be believed.
  Answer tlsa(const std::string& name);       // "_25._tcp.mx.example.com"
  Answer mx_dnssec(const std::string& name);  // whether the MX RRset is secure


  struct Impl;

 private:
  explicit Lookup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::dns
