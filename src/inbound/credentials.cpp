#include "inbound/credentials.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "config/config.h"
#include "core/base64.h"
#include "core/text.h"

namespace sluice::inbound {
namespace {

constexpr std::string_view kScheme = "$pbkdf2-sha256$";

std::string pbkdf2(std::string_view password, std::string_view salt, uint32_t iterations,
                   size_t length) {
  std::string out(length, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                    static_cast<int>(length), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

}  // namespace

Result<std::shared_ptr<const Credentials>> Credentials::load(const std::string& path) {
  auto text = config::read_text_file(path);
  if (!text) return error(path + ": cannot open the credentials file");
  return parse(*text, path);
}

Result<std::shared_ptr<const Credentials>> Credentials::parse(std::string_view text,
                                                              const std::string& name) {
  auto c = std::make_shared<Credentials>();
  size_t line_no = 0;
  while (!text.empty()) {
    std::string_view line = take_line(text);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](const std::string& why) {
      return error(name + ":" + std::to_string(line_no) + ": " + why);
    };
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail("expected user:$pbkdf2-sha256$...");
    const std::string user(line.substr(0, colon));
    std::string_view rest = line.substr(colon + 1);
    if (!rest.starts_with(kScheme)) return fail("unknown hash scheme (expected $pbkdf2-sha256$)");
    rest.remove_prefix(kScheme.size());
    const size_t d1 = rest.find('$');
    const size_t d2 = d1 == std::string_view::npos ? d1 : rest.find('$', d1 + 1);
    if (d2 == std::string_view::npos) return fail("expected $ITERATIONS$SALT$HASH");
    auto iterations = parse_u64(rest.substr(0, d1));
    auto salt = base64_decode(rest.substr(d1 + 1, d2 - d1 - 1));
    auto hash = base64_decode(rest.substr(d2 + 1));
    if (!iterations || *iterations < 1000 || *iterations > 10'000'000) {
      return fail("iterations must be 1000..10000000");
    }
    if (!salt || salt->size() < 8 || !hash || hash->size() < 16) return fail("bad salt or hash");
    if (c->users_.count(user)) return fail("user " + user + " appears twice");
    c->users_[user] = Entry{static_cast<uint32_t>(*iterations), std::move(*salt), std::move(*hash)};
  }
  return std::shared_ptr<const Credentials>(std::move(c));
}

bool Credentials::verify(std::string_view user, std::string_view password) const {
  static const Entry kDummy{kDefaultIterations, std::string(16, 's'), std::string(32, 'h')};
  const auto it = users_.find(std::string(user));
  const Entry& e = it == users_.end() ? kDummy : it->second;
  const std::string got = pbkdf2(password, e.salt, e.iterations, e.hash.size());
  const bool same = CRYPTO_memcmp(got.data(), e.hash.data(), e.hash.size()) == 0;
  return same && it != users_.end();
}

std::string Credentials::hash_password(std::string_view password, uint32_t iterations) {
  std::string salt(16, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size()));
  const std::string hash = pbkdf2(password, salt, iterations, 32);
  return std::string(kScheme) + std::to_string(iterations) + "$" + base64_encode(salt) + "$" +
         base64_encode(hash);
}

}  // namespace sluice::inbound
