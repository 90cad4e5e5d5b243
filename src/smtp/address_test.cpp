#include "smtp/address.h"

#include <gtest/gtest.h>

namespace sluice::smtp {
namespace {

Mailbox must_parse(std::string_view s) {
  auto r = parse_mailbox(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().detail);
  return r.ok() ? *r : Mailbox{};
}

TEST(Address, AcceptsDotStringsWithEveryAtextCharacter) {
  // Examples from RFC 3696 section 3, which RFC 5321's grammar admits.
  for (auto s : {"user@example.com", "customer/department=shipping@example.com",
                 "$A12345@example.com", "!def!xyz%abc@example.com", "_somename@example.com",
                 "first.last@sub.example.co.uk", "a@b", "x-y@a-b.example", "0@0.example"}) {
    must_parse(s);
  }
}

TEST(Address, KeepsQuotedLocalPartsAsWritten) {
  const Mailbox m = must_parse(R"("Abc\@def"@example.com)");
  EXPECT_EQ(m.local_part, R"("Abc\@def")");
  EXPECT_EQ(m.domain, "example.com");
  must_parse(R"("Fred Bloggs"@example.com)");
  must_parse(R"("Joe.\\Blow"@example.com)");
  must_parse(R"(""@example.com)");
  EXPECT_FALSE(parse_mailbox(R"("unterminated@example.com)").ok());
  EXPECT_FALSE(parse_mailbox("\"tab\there\"@example.com").ok());
}

TEST(Address, AcceptsAddressLiterals) {
  EXPECT_EQ(must_parse("user@[192.0.2.1]").domain_kind, DomainKind::kIPv4Literal);
  EXPECT_EQ(must_parse("user@[IPv6:2001:db8::1]").domain_kind, DomainKind::kIPv6Literal);
  EXPECT_EQ(must_parse("user@[IPv6:::1]").domain_kind, DomainKind::kIPv6Literal);
  EXPECT_EQ(must_parse("user@[x400:c=us;a=x]").domain_kind, DomainKind::kGeneralLiteral);
  EXPECT_EQ(must_parse("user@[192.0.2.1]").domain, "[192.0.2.1]");
  for (auto bad : {"user@[256.0.0.1]", "user@[1.2.3]", "user@[1.2.3.4.5]", "user@[IPv6:zz::1]",
                   "user@[IPv6:]", "user@[192.0.2.1", "user@[]", "user@[:x]", "user@[tag-:x]"}) {
    EXPECT_FALSE(parse_mailbox(bad).ok()) << bad;
  }
}

TEST(Address, RejectsMalformedMailboxes) {
  for (auto bad : {"", "user", "@example.com", "user@", "user@@example.com", ".user@example.com",
                   "user.@example.com", "us..er@example.com", "user@example..com",
                   "user@-example.com", "user@example-.com", "user@exa_mple.com",
                   "user name@example.com", "user@example.com.", "user@\xc3"}) {
    EXPECT_FALSE(parse_mailbox(bad).ok()) << bad;
  }
}

TEST(Address, EnforcesRfc5321SizeLimits) {
  const std::string local64(64, 'a');
  const std::string local65(65, 'a');
  must_parse(local64 + "@example.com");
  auto r = parse_mailbox(local65 + "@example.com");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, AddressError::Kind::kLocalPartTooLong);

  std::string domain;  // 4 labels of 63 + dots = 255 octets
  for (int i = 0; i < 4; ++i) domain += (i ? "." : "") + std::string(63, 'd');
  ASSERT_EQ(domain.size(), 255u);
  must_parse("a@" + domain);
  auto long_domain = parse_mailbox("a@x" + domain);
  EXPECT_FALSE(long_domain.ok());  // a 64-octet label is a syntax error before the 255 limit
  auto too_long = parse_mailbox("a@" + domain + ".x");
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().kind, AddressError::Kind::kDomainTooLong);

  // Path: 256 octets including the angle brackets.
  std::string d2 = std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(63, 'e') +
                   "." + std::string(58, 'f');
  std::string path = "<" + local64 + "@" + d2 + ">";
  ASSERT_GT(path.size(), 256u);
  std::string_view v = path;
  auto p = parse_forward_path(v);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind, AddressError::Kind::kPathTooLong);
}

TEST(Address, ReversePathAcceptsNullPath) {
  std::string_view s = "<> SIZE=10";
  auto r = parse_reverse_path(s);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(s, " SIZE=10");
  std::string_view f = "<>";
  EXPECT_FALSE(parse_forward_path(f).ok());
}

TEST(Address, ForwardPathAcceptsBarePostmaster) {
  std::string_view s = "<Postmaster>";
  auto r = parse_forward_path(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain_kind, DomainKind::kNone);
  EXPECT_EQ(r->str(), "Postmaster");
  std::string_view lower = "<postmaster>";
  EXPECT_TRUE(parse_forward_path(lower).ok());
  std::string_view as_sender = "<postmaster>";
  EXPECT_FALSE(parse_reverse_path(as_sender).ok());
}

TEST(Address, SourceRoutesAreAcceptedAndIgnored) {
  // RFC 5321 section 4.1.1.3 / appendix C.
  std::string_view s = "<@hosta.int,@jkl.org:userc@d.bar.org>";
  auto r = parse_forward_path(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str(), "userc@d.bar.org");
  EXPECT_TRUE(s.empty());
  std::string_view bad = "<@hosta.int,userc@d.bar.org>";
  EXPECT_FALSE(parse_forward_path(bad).ok());
}

TEST(Address, InternationalizedAddressesAreMarkedUtf8) {
  const Mailbox m =
      must_parse("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8");
  EXPECT_TRUE(m.utf8);
  EXPECT_TRUE(must_parse("j\xc3\xb6rg@example.com").utf8);
  EXPECT_FALSE(must_parse("jorg@example.com").utf8);
  EXPECT_FALSE(parse_mailbox("j\xc3rg@example.com").ok());  // malformed UTF-8
}

TEST(Address, PathNeedsAngleBrackets) {
  std::string_view s = "user@example.com";
  EXPECT_FALSE(parse_forward_path(s).ok());
  std::string_view t = "<user@example.com";
  EXPECT_FALSE(parse_forward_path(t).ok());
}

TEST(Address, DomainValidation) {
  EXPECT_TRUE(is_domain("mx1.example.com"));
  EXPECT_TRUE(is_domain("localhost"));
  EXPECT_FALSE(is_domain(""));
  EXPECT_FALSE(is_domain("a..b"));
  DomainKind k{};
  EXPECT_TRUE(is_address_literal("[127.0.0.1]", &k));
  EXPECT_EQ(k, DomainKind::kIPv4Literal);
  EXPECT_FALSE(is_address_literal("127.0.0.1"));
}

}  // namespace
}  // namespace sluice::smtp
