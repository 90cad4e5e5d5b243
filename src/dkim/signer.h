// DKIM signing (RFC 6376; RSA-SHA256, and Ed25519-SHA256 per RFC 8463), with OpenSSL. Keys are
// read once, at load; a message whose From domain (or a parent of it, for DMARC's relaxed
// alignment) has keys gets one DKIM-Signature per key, made as it enters the spool, so that
// every retry sends the same bytes.
//
// Thread-safe after load(): sign() reads only constant state (EVP_PKEY signing with a fresh
// context per call). It trusts its input only as far as splitting header fields: a message
// without a From field, or with several, is not signed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/status.h"
#include "dkim/canon.h"

namespace sluice::dkim {

class Signer {
 public:
  // Reads every key of every [dkim."DOMAIN"]; an error names the domain, the file and what is
  // wrong (unreadable, not a private key, RSA shorter than 2048 bits, another algorithm).
  static Result<std::shared_ptr<const Signer>> load(const std::map<std::string, config::DkimDomain>& domains);
  ~Signer();

  // The DKIM-Signature fields to put in front of the message `prefix + data` (header lines
  // sluice added, then the message as received), each folded and ending in CRLF; "" when the
  // message's From domain has no key. `now` is the t= tag (Unix seconds).
  std::string sign(std::string_view prefix, std::string_view data, int64_t now) const;

  // The domain whose keys sign mail from `from_domain`: itself, else its nearest configured
  // parent; "" when none.
  std::string signing_domain(std::string_view from_domain) const;

  struct Key;  // a selector and its private key (signer.cpp)

 private:
  struct Domain {
    config::DkimDomain config;
    std::vector<std::unique_ptr<Key>> keys;
    Canon header = Canon::kRelaxed, body = Canon::kRelaxed;
  };
  std::map<std::string, Domain> domains_;
};

// The TXT record that publishes a private key's public half at SELECTOR._domainkey.DOMAIN:
// "v=DKIM1; k=rsa; p=…" (the SubjectPublicKeyInfo) or "v=DKIM1; k=ed25519; p=…" (the raw key,
// RFC 8463 section 4). An error names the file.
Result<std::string> public_record(const std::string& key_path);

// The address's domain of a From field's value ("Name <a@Example.org>" → "example.org");
// "" when there is none or more than one mailbox.
std::string from_domain(std::string_view value);

}  // namespace sluice::dkim
