// Submission credentials: the file named by [smtp] auth_credentials.
//
// One user per line, `user:$pbkdf2-sha256$ITERATIONS$SALT$HASH` (salt and hash in base64);
// blank lines and lines starting with '#' are ignored. `sluice passwd USER` prints a line.
// Passwords are never stored, only salted PBKDF2-HMAC-SHA256 hashes (OpenSSL), compared in
// constant time; an unknown user costs the same work as a known one.
//
// Verification is CPU-heavy by design (tens of milliseconds): callers run it off the I/O threads.
// Constant after load(); thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace sluice::inbound {

class Credentials {
 public:
  static constexpr uint32_t kDefaultIterations = 100'000;

  // Errors name the file and line. (Shared pointers: the table is built once and only read.)
  static Result<std::shared_ptr<const Credentials>> load(const std::string& path);
  static Result<std::shared_ptr<const Credentials>> parse(std::string_view text,
                                                          const std::string& name);

  bool verify(std::string_view user, std::string_view password) const;
  size_t size() const { return users_.size(); }

  // The stored form of a password with a fresh random salt: "$pbkdf2-sha256$N$salt$hash".
  static std::string hash_password(std::string_view password,
                                   uint32_t iterations = kDefaultIterations);

 private:
  struct Entry {
    uint32_t iterations;
    std::string salt;
    std::string hash;
  };
  std::unordered_map<std::string, Entry> users_;
};

}  // namespace sluice::inbound
