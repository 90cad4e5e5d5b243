#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <filesystem>

#include "core/base64.h"
#include "dkim/canon.h"
#include "dkim/signer.h"

namespace sluice::dkim {
namespace {

// RFC 6376 section 3.4.5's example.
constexpr std::string_view kExample = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

TEST(DkimCanon, TheRfcExampleBothWays) {
  const auto fields = split_header(kExample);
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[1].name, "B");
  EXPECT_EQ(canon_header(fields[0], Canon::kRelaxed) + canon_header(fields[1], Canon::kRelaxed),
            "a:X\r\nb:Y Z\r\n");
  EXPECT_EQ(canon_header(fields[1], Canon::kSimple), "B : Y\t\r\n\tZ  \r\n");
  const std::string_view body = kExample.substr(body_offset(kExample));
  EXPECT_EQ(canon_body(body, Canon::kRelaxed), " C\r\nD E\r\n");
  EXPECT_EQ(canon_body(body, Canon::kSimple), " C \r\nD \t E\r\n");
}

TEST(DkimCanon, EmptyBodiesAndMissingLineEnds) {
  EXPECT_EQ(canon_body("", Canon::kSimple), "\r\n");
  EXPECT_EQ(canon_body("", Canon::kRelaxed), "");
  EXPECT_EQ(canon_body("\r\n\r\n", Canon::kRelaxed), "");
  EXPECT_EQ(canon_body("last line", Canon::kSimple), "last line\r\n");
  EXPECT_EQ(canon_body("bare\nfeeds\n", Canon::kSimple), "bare\r\nfeeds\r\n");
  EXPECT_EQ(body_offset("A: b\r\n"), 6u);  // no body at all
}

TEST(DkimCanon, OversignedNamesAndBottomUpInstances) {
  const std::string text = "Received: x\r\nFrom: a@x.test\r\nTo: b@y.test\r\nTo: c@y.test\r\n\r\n";
  const auto fields = split_header(text);
  const auto names = signed_names(fields, {"from", "to", "subject"}, {"from", "subject"});
  EXPECT_EQ(names, (std::vector<std::string>{"from", "from", "to", "to", "subject"}));
  // Bottom up: the second To first; the oversigned From and the absent Subject add nothing.
  EXPECT_EQ(header_hash_input(fields, names, Canon::kRelaxed),
            "from:a@x.test\r\nto:c@y.test\r\nto:b@y.test\r\n");
}

TEST(DkimFrom, TheOneMailboxDomain) {
  EXPECT_EQ(from_domain(" \"Shop, Inc.\" <News@Shop.Example> (promo)\r\n"), "shop.example");
  EXPECT_EQ(from_domain(" a@b.test\r\n"), "b.test");
  EXPECT_EQ(from_domain(" a@b.test, c@d.test\r\n"), "");
  EXPECT_EQ(from_domain(" undisclosed\r\n"), "");
}

// A key of `type` ("RSA" with `bits`, or "ED25519") written as PEM into a temporary file.
std::string key_file(const char* type, unsigned bits = 2048) {
  EVP_PKEY* k = std::string(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{bits})
                                           : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  const auto path = std::filesystem::temp_directory_path() /
                    ("sluice-dkim-" + std::string(type) + std::to_string(bits) + ".pem");
  FILE* f = std::fopen(path.c_str(), "w");
  PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  EVP_PKEY_free(k);
  return path.string();
}

config::DkimDomain domain_with(std::vector<config::DkimKey> keys) {
  config::DkimDomain d;
  d.domain = "example.org";
  d.keys = std::move(keys);
  d.headers = config::default_dkim_headers();
  d.oversign = config::default_dkim_oversign();
  return d;
}

TEST(DkimSigner, SignsWithEveryKeyTheSameBytesEachTime) {
  const auto signer = Signer::load({{"example.org", domain_with({{"rsa1", key_file("RSA")},
                                                                 {"ed1", key_file("ED25519")}})}});
  ASSERT_TRUE(signer) << signer.error().message;
  const std::string prefix = "Received: from x by y; Mon, 30 Nov 2026 12:00:00 +0000\r\n";
  const std::string data = "From: News <news@mail.example.org>\r\nTo: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n";
  const std::string sig = (*signer)->sign(prefix, data, 1796000000);
  const auto fields = split_header(sig);
  ASSERT_EQ(fields.size(), 2u) << sig;
  EXPECT_NE(sig.find("a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=rsa1;"), std::string::npos);
  EXPECT_NE(sig.find("a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=ed1;"), std::string::npos);
  EXPECT_NE(sig.find("t=1796000000; h=from:from:reply-to:subject:subject:date:to:to:cc:"),
            std::string::npos) << sig;
  EXPECT_EQ(sig.find("received"), std::string::npos);  // trace fields are not signed
  for (const auto& f : fields) EXPECT_TRUE(f.raw.ends_with("\r\n"));
  // Both algorithms are deterministic: the same message signs the same way.
  EXPECT_EQ((*signer)->sign(prefix, data, 1796000000), sig);
  // No key for the From domain, or two From fields: no signature.
  EXPECT_EQ((*signer)->sign(prefix, "From: a@other.test\r\n\r\nx\r\n", 1), "");
  EXPECT_EQ((*signer)->sign(prefix, "From: a@example.org\r\nFrom: b@example.org\r\n\r\nx\r\n", 1), "");
  EXPECT_EQ((*signer)->signing_domain("deep.mail.example.org"), "example.org");
  EXPECT_EQ((*signer)->signing_domain("example.org.evil.test"), "");
}

TEST(DkimSigner, ShortRsaKeysAndNonKeysAreRefusedWithTheirName) {
  auto short_key = Signer::load({{"example.org", domain_with({{"old", key_file("RSA", 1024)}})}});
  ASSERT_FALSE(short_key);
  EXPECT_NE(short_key.error().message.find("1024 bits: DKIM needs 2048 or more"), std::string::npos);
  const auto junk = std::filesystem::temp_directory_path() / "sluice-dkim-junk.pem";
  FILE* f = std::fopen(junk.c_str(), "w");
  std::fputs("not a key\n", f);
  std::fclose(f);
  auto bad = Signer::load({{"example.org", domain_with({{"x", junk.string()}})}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("dkim \"example.org\" selector x: "), std::string::npos);
  EXPECT_NE(bad.error().message.find("not a PEM private key"), std::string::npos);
}

}  // namespace
}  // namespace sluice::dkim
