#include "inbound/inject.h"

#include <gtest/gtest.h>

namespace sluice::inbound {
namespace {

// KumoMTA's documented example requests (docs.kumomta.com, "POST /api/inject/v1").
constexpr std::string_view kBasic = R"({
    "envelope_sender": "noreply@example.com",
    "content": "Subject: hello\n\nHello there",
    "recipients": [{"email": "recipient@example.com"}]
})";

constexpr std::string_view kBuilder = R"({
    "envelope_sender": "noreply@example.com",
    "content": {
        "text_body": "This is the plain text part for {{ name }}",
        "html_body": "<p>This is the <b>HTML</b> part for {{ name }}</p>",
        "attachments": [
            {"data": "aGVsbG8K", "base64": true, "content_type": "text/plain",
             "file_name": "hello.txt"},
            {"data": "<svg/>", "content_type": "image/svg+xml", "content_id": "logo"}
        ],
        "headers": {"X-Campaign-Note": "for {{ name | upper }}"},
        "from": {"email": "someone@example.com", "name": "Someone Sending"},
        "subject": "Hello {{ name }}",
        "reply_to": {"email": "help@example.com", "name": "Help"}
    },
    "recipients": [
        {"email": "recipient@example.com", "name": "Mr. Recipient",
         "substitutions": {"name": "James <&> Smith"}},
        {"email": "other@example.com"}
    ],
    "substitutions": {"name": "friend"}
})";

TEST(Inject, KumoBasicExample) {
  auto r = parse_inject_request(kBasic, 100);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->recipients.size(), 1u);
  auto m = build_message(*r, r->recipients[0], 1);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, "Subject: hello\r\n\r\nHello there\r\n");
}

TEST(Inject, KumoBuilderExampleMakesAMimeMessagePerRecipient) {
  auto r = parse_inject_request(kBuilder, 100);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto m = build_message(*r, r->recipients[0], 0xabc);
  ASSERT_TRUE(m.ok()) << m.error().message;
  const std::string& s = *m;
  EXPECT_NE(s.find("From: \"Someone Sending\" <someone@example.com>\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("Reply-To: \"Help\" <help@example.com>\r\n"), std::string::npos);
  EXPECT_NE(s.find("To: \"Mr. Recipient\" <recipient@example.com>\r\n"), std::string::npos);
  EXPECT_NE(s.find("Subject: Hello James <&> Smith\r\n"), std::string::npos);
  EXPECT_NE(s.find("X-Campaign-Note: for JAMES <&> SMITH\r\n"), std::string::npos);
  EXPECT_NE(s.find("MIME-Version: 1.0\r\n"), std::string::npos);
  EXPECT_NE(s.find("multipart/mixed; boundary=\"=_sluice_0000000000000abc_3\""), std::string::npos);
  EXPECT_NE(s.find("multipart/related"), std::string::npos);
  EXPECT_NE(s.find("multipart/alternative"), std::string::npos);
  EXPECT_NE(s.find("This is the plain text part for James <&> Smith"), std::string::npos);
  // HTML-escaped in the HTML part (quoted-printable: '=' never appears bare).
  EXPECT_NE(s.find("part for James &lt;&amp;&gt; Smith</p>"), std::string::npos) << s;
  EXPECT_NE(s.find("Content-Disposition: attachment; filename=\"hello.txt\"\r\n\r\naGVsbG8K\r\n"),
            std::string::npos);
  EXPECT_NE(s.find("Content-ID: <logo>\r\nContent-Disposition: inline\r\n"), std::string::npos);
  // The second recipient gets the request's substitutions and a bare To.
  auto other = build_message(*r, r->recipients[1], 1);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->find("Subject: Hello friend\r\n"), std::string::npos);
  EXPECT_NE(other->find("To: other@example.com\r\n"), std::string::npos);
}

TEST(Inject, NonAsciiHeadersAreEncodedWordsAndBodiesQuotedPrintable) {
  auto r = parse_inject_request(R"({"envelope_sender": "a@example.org",
      "content": {"subject": "Grüße aus Köln, 東京からこんにちは、長い件名のテストです",
                  "text_body": "Grüße\nline two has a long tail )" + std::string(100, 'x') + R"("},
      "recipients": [{"email": "b@example.net", "name": "Zoë"}]})",
                                  10);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto m = build_message(*r, r->recipients[0], 1);
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->find("Subject: =?UTF-8?B?"), std::string::npos) << *m;
  EXPECT_NE(m->find("?=\r\n =?UTF-8?B?"), std::string::npos);  // folded encoded-words
  EXPECT_NE(m->find("To: =?UTF-8?B?Wm/Dqw==?= <b@example.net>"), std::string::npos) << *m;
  EXPECT_NE(m->find("Gr=C3=BC=C3=9Fe\r\n"), std::string::npos);
  for (size_t start = 0; start < m->size();) {  // every line within 78
    const size_t end = m->find("\r\n", start);
    ASSERT_NE(end, std::string::npos);  // and ends in CRLF
    EXPECT_LE(end - start, 78u) << m->substr(start, end - start);
    start = end + 2;
  }
}

TEST(Inject, BadRequestsSayWhatIsWrong) {
  auto err = [](std::string_view body) {
    auto r = parse_inject_request(body, 3);
    return r.ok() ? std::string("accepted") : r.error().message;
  };
  EXPECT_NE(err("{not json").find("not JSON"), std::string::npos);
  EXPECT_EQ(err("[]"), "the body must be a JSON object");
  EXPECT_EQ(err(R"({"content": "x", "recipients": [{"email": "a@b.c"}]})"),
            "envelope_sender is required");
  EXPECT_EQ(err(R"({"envelope_sender": "a@b.c", "content": "x", "recipients": []})"),
            "recipients must be a non-empty array of {\"email\": …}");
  EXPECT_EQ(err(R"({"envelope_sender": "a@b.c", "content": "x", "recipients": [{"email": "nope"}]})")
                .substr(0, 11),
            "recipients:");
  EXPECT_NE(err(R"({"envelope_sender": "a@b.c", "content": "x",
                   "recipients": [{"email": "a@b.c"},{"email": "a@b.c"},{"email": "a@b.c"},{"email": "a@b.c"}]})")
                .find("too many recipients: 4"),
            std::string::npos);
  // Header injection through the builder is refused.
  EXPECT_EQ(err(R"({"envelope_sender": "a@b.c", "recipients": [{"email": "a@b.c"}],
                   "content": {"headers": {"X-A": "v\r\nBcc: victim@example.org"}}})"),
            "content.headers.X-A must not contain line breaks");
  EXPECT_EQ(err(R"({"envelope_sender": "a@b.c", "recipients": [{"email": "a@b.c"}],
                   "content": {"attachments": [{"data": "***", "base64": true}]}})"),
            "content.attachments: data is not valid base64");
  // The null sender is allowed (bounces, notifications).
  EXPECT_EQ(err(R"({"envelope_sender": "", "content": "x", "recipients": [{"email": "a@b.c"}]})"),
            "accepted");
}

TEST(Inject, TemplatesAreASmallDocumentedSubset) {
  const std::map<std::string, std::string> vars{{"name", " Ann "}, {"user.city", "Oslo"}};
  EXPECT_EQ(*render_template("Hi {{name|trim}} of {{ user.city }}{# note #}!", vars, false),
            "Hi Ann of Oslo!");
  EXPECT_EQ(*render_template("{{ missing }}|{{ missing | default(\"there\") }}", vars, false),
            "|there");
  EXPECT_EQ(*render_template("a { b } {not a tag}", vars, false), "a { b } {not a tag}");
  EXPECT_FALSE(render_template("{% if x %}y{% endif %}", vars, false).ok());
  EXPECT_FALSE(render_template("{{ name | capitalize }}", vars, false).ok());
  EXPECT_FALSE(render_template("{{ unclosed", vars, false).ok());
}

TEST(Inject, RawLinesOver998OctetsAreRefused) {
  InjectRequest r;
  r.content.raw = "Subject: x\n\n" + std::string(999, 'a') + "\n";
  r.recipients.push_back({"a@b.c", "", {}});
  auto m = build_message(r, r.recipients[0], 1);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message,
            "content: line 3 is 999 octets, over the 998 that RFC 5322 allows: fold it");
}

}  // namespace
}  // namespace sluice::inbound
