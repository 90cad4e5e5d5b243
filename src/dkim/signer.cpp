#include "dkim/signer.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>

#include "core/base64.h"
#include "core/text.h"

namespace sluice::dkim {

struct Signer::Key {
  std::string selector;
  std::string algorithm;  // "rsa-sha256" or "ed25519-sha256"
  EVP_PKEY* pkey = nullptr;
  // RSA: a signing context set up once (EVP_DigestSignInit looks up the provider's key
  // management, which costs about as much as a small message's hashing); each signature works
  // on a copy. Only ever read after load.
  EVP_MD_CTX* prepared = nullptr;
  ~Key() {
    EVP_MD_CTX_free(prepared);
    EVP_PKEY_free(pkey);
  }
};

namespace {

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  if (!e) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Result<std::unique_ptr<Signer::Key>> read_key(const std::string& domain, const config::DkimKey& k) {
  auto fail = [&](const std::string& why) {
    return Unexpected<Error>{Error{"dkim \"" + domain + "\" selector " + k.selector + ": " +
                                   k.key_path + ": " + why}};
  };
  FILE* f = std::fopen(k.key_path.c_str(), "r");
  if (!f) return fail("cannot open the key file");
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!pkey) return fail("not a PEM private key (" + openssl_error() + ")");
  auto key = std::make_unique<Signer::Key>();
  key->selector = k.selector;
  key->pkey = pkey;
  const int type = EVP_PKEY_get_base_id(pkey);
  if (type == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(pkey) < 2048)
      return fail("an RSA key of " + std::to_string(EVP_PKEY_get_bits(pkey)) +
                  " bits: DKIM needs 2048 or more");
    key->algorithm = "rsa-sha256";
    key->prepared = EVP_MD_CTX_new();
    if (!key->prepared ||
        EVP_DigestSignInit(key->prepared, nullptr, EVP_sha256(), nullptr, pkey) != 1)
      return fail("cannot sign with it (" + openssl_error() + ")");
  } else if (type == EVP_PKEY_ED25519) {
    key->algorithm = "ed25519-sha256";
  } else {
    return fail("neither an RSA nor an Ed25519 key");
  }
  return key;
}

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), n);
}

// The signature of the header hash input: RSA over its SHA-256 (PKCS#1 v1.5); Ed25519 over
// the SHA-256 hash itself (RFC 8463 section 3).
std::string signature(const Signer::Key& key, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string digest, out;
  std::string_view data = input;
  const EVP_MD* md = EVP_sha256();
  if (key.algorithm == "ed25519-sha256") {
    digest = sha256(input);
    data = digest;
    md = nullptr;
  }
  size_t len = 0;
  const bool ready = key.prepared ? EVP_MD_CTX_copy_ex(ctx, key.prepared) == 1
                                  : EVP_DigestSignInit(ctx, nullptr, md, nullptr, key.pkey) == 1;
  if (ctx && ready &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) == 1) {
    out.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1)
      out.resize(len);
    else
      out.clear();
  }
  EVP_MD_CTX_free(ctx);
  return out;
}

// Appends `text` to `out` in pieces of at most `width`, "\r\n\t" between them.
void folded(std::string& out, std::string_view text, size_t width) {
  for (size_t at = 0; at < text.size(); at += width) {
    if (at) out += "\r\n\t";
    out.append(text.substr(at, width));
  }
}

Canon canon_of(const std::string& s) { return s == "simple" ? Canon::kSimple : Canon::kRelaxed; }

}  // namespace

Signer::~Signer() = default;

Result<std::shared_ptr<const Signer>> Signer::load(
    const std::map<std::string, config::DkimDomain>& domains) {
  auto signer = std::make_shared<Signer>();
  for (const auto& [name, d] : domains) {
    Domain dom;
    dom.config = d;
    dom.header = canon_of(d.header_canon);
    dom.body = canon_of(d.body_canon);
    for (const config::DkimKey& k : d.keys) {
      auto key = read_key(name, k);
      if (!key) return Unexpected<Error>{key.error()};
      dom.keys.push_back(std::move(*key));
    }
    signer->domains_[to_lower(name)] = std::move(dom);
  }
  return std::shared_ptr<const Signer>(std::move(signer));
}

std::string Signer::signing_domain(std::string_view from) const {
  std::string d = to_lower(from);
  while (!d.empty()) {
    if (domains_.count(d)) return d;
    const size_t dot = d.find('.');
    if (dot == std::string::npos) break;
    d.erase(0, dot + 1);
  }
  return {};
}

std::string Signer::sign(std::string_view prefix, std::string_view data, int64_t now) const {
  std::vector<HeaderField> fields = split_header(prefix);
  const std::vector<HeaderField> own = split_header(data);
  const HeaderField* from = nullptr;
  for (const HeaderField& f : own) {
    if (!iequals(f.name, "from")) continue;
    if (from) return {};  // two From fields: no signature vouches for that
    from = &f;
  }
  if (!from) return {};
  const std::string d = signing_domain(from_domain(from->raw.substr(from->raw.find(':') + 1)));
  if (d.empty()) return {};
  const Domain& dom = domains_.at(d);
  fields.insert(fields.end(), own.begin(), own.end());
  const std::vector<std::string> names =
      signed_names(fields, dom.config.headers, dom.config.oversign);
  const std::string headers = header_hash_input(fields, names, dom.header);
  const std::string bh =
      base64_encode(sha256(canon_body(data.substr(body_offset(data)), dom.body)));
  const std::string c = std::string(dom.header == Canon::kSimple ? "simple" : "relaxed") + "/" +
                        (dom.body == Canon::kSimple ? "simple" : "relaxed");
  std::string h;
  size_t line = 9;  // "\th=" and the tag before it
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) {
      h.push_back(':');
      if (line + names[i].size() > 70) {
        h += "\r\n\t";
        line = 1;
      }
    }
    h += names[i];
    line += names[i].size() + 1;
  }
  std::string out;
  for (const auto& key : dom.keys) {
    std::string field = "DKIM-Signature: v=1; a=" + key->algorithm + "; c=" + c + "; d=" + d +
                        "; s=" + key->selector + ";\r\n\tt=" + std::to_string(now) + "; h=" + h +
                        ";\r\n\tbh=" + bh + ";\r\n\tb=";
    // The field itself is hashed last, with b= empty and without its CRLF (RFC 6376 3.7).
    std::string sig_input = canon_header({"DKIM-Signature", field}, dom.header);
    sig_input.resize(sig_input.size() - 2);
    const std::string sig = signature(*key, headers + sig_input);
    if (sig.empty()) continue;  // cannot happen with a loaded key; never a broken signature
    folded(field, base64_encode(sig), 72);
    out += field + "\r\n";
  }
  return out;
}

Result<std::string> public_record(const std::string& key_path) {
  FILE* f = std::fopen(key_path.c_str(), "r");
  if (!f) return error(key_path + ": cannot open the key file");
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!pkey) return error(key_path + ": not a PEM private key");
  std::string out;
  if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) == 1)
      out = "v=DKIM1; k=ed25519; p=" + base64_encode(std::string_view(reinterpret_cast<char*>(raw), len));
  } else {
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(pkey, &der);
    if (len > 0)
      out = "v=DKIM1; k=rsa; p=" + base64_encode(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
    OPENSSL_free(der);
  }
  EVP_PKEY_free(pkey);
  if (out.empty()) return error(key_path + ": cannot derive its public key");
  return out;
}

std::string from_domain(std::string_view value) {
  // Comments and quoted names aside, one mailbox: "Name <local@domain>" or "local@domain".
  std::string addr;
  bool quoted = false;
  int comment = 0, mailboxes = 1;
  std::string plain;
  for (size_t i = 0; i < value.size(); ++i) {
    const char ch = value[i];
    if (quoted) {
      if (ch == '\\') ++i;
      else if (ch == '"') quoted = false;
      continue;
    }
    if (comment) {
      if (ch == '(') ++comment;
      else if (ch == ')') --comment;
      continue;
    }
    if (ch == '\r' || ch == '\n') continue;  // folding
    if (ch == '"') quoted = true;
    else if (ch == '(') comment = 1;
    else if (ch == ',') ++mailboxes;
    else if (ch == '<') {
      const size_t end = value.find('>', i);
      if (end == std::string_view::npos) return {};
      addr = std::string(value.substr(i + 1, end - i - 1));
      i = end;
    } else {
      plain.push_back(ch);
    }
  }
  if (mailboxes != 1) return {};
  if (addr.empty()) addr = std::string(trim(plain));
  const size_t at = addr.rfind('@');
  if (at == std::string::npos) return {};
  return to_lower(trim(addr.substr(at + 1)));
}

}  // namespace sluice::dkim
