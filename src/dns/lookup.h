// Blocking DNS lookups for command-line tools (`sluice auth-check`): one question at a time with
// c-ares, answers as text. Not for the delivery path (src/dns/resolver.h is asynchronous and
// cached). Not thread-safe: one Lookup per thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/units.h"
#include "core/status.h"

namespace sluice::dns {

struct Answer {
  enum class Status { kOk, kNoData, kNxDomain, kFailed };
  Status status = Status::kFailed;
  std::vector<std::string> values;  // TXT: each record's strings joined; A/AAAA: addresses;
                                    // MX: host names by preference; PTR: names
  std::string error;                // kFailed: what went wrong (SERVFAIL, timeout, …)
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

  struct Impl;

 private:
  explicit Lookup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::dns
