#include "classify/classifier.h"

#include <gtest/gtest.h>

#include <set>

#include "config/config.h"

namespace sluice::classify {
namespace {

// The shipped files, read from the source tree (the build embeds the same files).
Classifier shipped() {
  auto c = Classifier::load(std::string(SLUICE_SOURCE_DIR) + "/etc/classify.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  if (!c.ok()) return Classifier();
  const std::string phrases = std::string(SLUICE_SOURCE_DIR) + "/etc/phrases.toml";
  auto text = config::read_text_file(phrases);
  EXPECT_TRUE(text.has_value()) << phrases;
  if (text) {
    auto more = c->parse_more(*text, phrases);
    EXPECT_TRUE(more.ok()) << (more.ok() ? "" : more.error().message);
  }
  return std::move(*c);
}

Verdict run(const Classifier& c, std::string_view reply, Stage stage = Stage::kRcpt,
            std::string_view provider = "", bool others_open = false) {
  auto r = parse_reply_line(reply);
  EXPECT_TRUE(r.ok()) << reply;
  Input in;
  in.stage = stage;
  in.reply = &*r;
  in.provider = provider;
  in.others_open = others_open;
  return c.classify(in);
}

// Every shipped rule and phrase carries the text of its source as examples; each must be
// classified by its own rule (so no earlier rule shadows it), or for a phrase into the phrase's
// category (other evidence may weigh in, no rule may take it).
TEST(Classifier, EveryShippedRuleClassifiesItsSourcesText) {
  const Classifier c = shipped();
  ASSERT_GT(c.size(), 50u);
  ASSERT_GT(c.phrases(), 40u);
  std::set<std::string> with_examples;
  for (const auto& e : c.examples()) {
    auto r = parse_reply_line(e.reply);
    ASSERT_TRUE(r.ok()) << e.rule << ": " << e.reply;
    Input in;
    in.stage = e.stage;
    in.reply = &*r;
    in.provider = e.provider;
    in.others_open = e.others_open;
    const Verdict v = c.classify(in);
    if (e.phrase || e.provider.empty()) {
      // Phrases weigh in together; a generic rule's text may be tied to a provider by a hint
      // and taken by that provider's rule. Either way the category must hold.
      EXPECT_EQ(category_name(v.category), category_name(e.category))
          << e.rule << " example: " << e.reply << " (decided by " << v.rule << ")";
      if (!e.phrase && v.rule != e.rule) {
        EXPECT_TRUE(std::string_view(v.rule).find('-') != std::string_view::npos &&
                    !c.examples().empty())
            << e.rule << " shadowed by " << v.rule;
      }
    } else {
      EXPECT_EQ(v.rule, e.rule) << "example: " << e.reply;
    }
    with_examples.insert(e.rule);
  }
  EXPECT_EQ(with_examples.size(), c.size() + c.phrases()) << "a rule or phrase without examples";
}

TEST(Classifier, ShippedRulesCoverTheSimulatorsTexts) {
  const Classifier c = shipped();
  auto conn = run(c, "421 4.7.0 Too many concurrent connections from this IP, try again later",
                  Stage::kBanner);
  EXPECT_EQ(conn.category, Category::kConnectionLimit);
  EXPECT_EQ(conn.action, Action::kReduceConnections);
  EXPECT_FALSE(conn.hard);
  EXPECT_EQ(run(c, "451 4.7.1 Message rate limit exceeded, try again later", Stage::kMail).category,
            Category::kRateLimit);
  EXPECT_EQ(run(c, "451 4.7.1 Greylisted, please try again later").action, Action::kGreylistRetry);
  auto rep =
      run(c, "421 4.7.0 [TS01] Messages from this IP temporarily deferred due to user complaints",
          Stage::kBanner);
  EXPECT_EQ(rep.category, Category::kReputation);
  EXPECT_EQ(rep.action, Action::kSuspend);
  auto unknown = run(c, "550 5.1.1 The email account that you tried to reach does not exist");
  EXPECT_EQ(unknown.category, Category::kUserUnknown);
  EXPECT_TRUE(unknown.hard);
  EXPECT_EQ(unknown.action, Action::kBounce);
  EXPECT_EQ(run(c, "452 4.2.2 The email account that you tried to reach is over quota").category,
            Category::kMailboxFull);
  auto other = run(c, "451 4.3.0 Temporary system problem, try again later");
  EXPECT_EQ(other.action, Action::kRetry);
}

TEST(Classifier, UnexplainedBannerRefusalIsAConnectionLimitOnlyWhileOthersAreOpen) {
  const Classifier c = shipped();
  const auto alone = run(c, "421 Service not available", Stage::kBanner, "", false);
  EXPECT_NE(alone.category, Category::kConnectionLimit);
  EXPECT_EQ(alone.action, Action::kRetry);
  const auto crowded = run(c, "421 Service not available", Stage::kBanner, "", true);
  EXPECT_EQ(crowded.category, Category::kConnectionLimit);
  EXPECT_EQ(crowded.action, Action::kReduceConnections);
}

TEST(Classifier, ProviderRulesApplyOnlyToTheirProvider) {
  auto c = Classifier::parse(R"(
[[rule]]
name = "p"
provider = "gmail"
text = 'try again later'
category = "rate-limit"
examples = ["421 4.7.0 Try again later"]
)",
                             "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(run(*c, "421 4.7.0 Try again later", Stage::kRcpt, "gmail").rule, "p");
  EXPECT_EQ(run(*c, "421 4.7.0 Try again later", Stage::kRcpt, "yahoo").rule, "code");
}

TEST(Classifier, MatchesStageCodePatternsEnhancedPrefixesAndText) {
  auto c = Classifier::parse(R"(
[[rule]]
name = "banner-only"
stage = ["banner", "ehlo"]
code = ["45x", "421"]
category = "connection-limit"
[[rule]]
name = "enh-prefix"
enhanced = "5.1."
category = "user-unknown"
[[rule]]
name = "exact-enh"
enhanced = "4.2.2"
category = "mailbox-full"
[[rule]]
name = "text"
text = 'spam\s+detected'
category = "policy"
severity = "hard"
action = "bounce"
)",
                             "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(run(*c, "421 busy", Stage::kBanner).rule, "banner-only");
  EXPECT_EQ(run(*c, "452 busy", Stage::kEhlo).rule, "banner-only");
  EXPECT_EQ(run(*c, "442 busy", Stage::kBanner).rule, "code");
  EXPECT_EQ(run(*c, "421 busy", Stage::kMail).rule, "code");
  EXPECT_EQ(run(*c, "550 5.1.10 not found").rule, "enh-prefix");
  EXPECT_EQ(run(*c, "452 4.2.2 full").rule, "exact-enh");
  EXPECT_EQ(run(*c, "452 4.2.20 full").rule, "code");
  const auto t = run(*c, "451 4.7.1 SPAM   Detected here");
  EXPECT_EQ(t.rule, "text");
  EXPECT_TRUE(t.hard);  // the rule's severity wins over the code's
  EXPECT_EQ(t.action, Action::kBounce);
  EXPECT_EQ(run(*c, "250 2.0.0 ok").category, Category::kDelivered);
}

TEST(Classifier, FallbackFollowsTheCode) {
  const Classifier none;
  const auto soft = run(none, "451 whatever");
  EXPECT_EQ(soft.category, Category::kOther);
  EXPECT_FALSE(soft.hard);
  EXPECT_EQ(soft.action, Action::kRetry);
  const auto hard = run(none, "554 whatever");
  EXPECT_TRUE(hard.hard);
  EXPECT_EQ(hard.action, Action::kBounce);
}

TEST(Classifier, BadRulesAreRefusedWithTheirLine) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[[rule]]\nname = \"a\"\ncategory = \"nope\"\n", "t.toml:1: rule a: category"},
      {"[[rule]]\nname = \"a\"\ncategory = \"policy\"\ntext = '(unclosed'\n",
       "invalid regular expression"},
      {"[[rule]]\nname = \"a\"\ncategory = \"policy\"\ncode = \"4x\"\n", "code pattern"},
      {"[[rule]]\nname = \"a\"\ncategory = \"policy\"\nstage = \"helo\"\n", "unknown stage"},
      {"[[rule]]\nname = \"a\"\ncategory = \"policy\"\ncolour = 1\n", "unknown key 'colour'"},
      {"[[rule]]\nname = \"a\"\ncategory = \"policy\"\n[[rule]]\nname = \"a\"\n"
       "category = \"policy\"\n",
       "t.toml:4: rule a: the name is used twice"},
      {"[[rule]]\ncategory = \"policy\"\n", "needs a name"},
      {"[[rule]]\nname = \"a\"\ncategory = \"policy\"\naction = \"explode\"\n", "not an action"},
      {"rules = 1\n", "unknown key 'rules'"},
      {"[[rule]\n", "t.toml:1"},
  };
  for (const auto& k : cases) {
    auto c = Classifier::parse(k.toml, "t.toml");
    ASSERT_FALSE(c.ok()) << k.toml;
    EXPECT_NE(c.error().message.find(k.expect), std::string::npos) << c.error().message;
  }
}

TEST(Classifier, ParsesReplyLines) {
  auto r = parse_reply_line("421-4.7.28 [192.0.2.1] Our system has detected");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, 421);
  ASSERT_TRUE(r->enhanced);
  EXPECT_EQ(r->enhanced->str(), "4.7.28");
  EXPECT_EQ(r->text(), "[192.0.2.1] Our system has detected");
  auto plain = parse_reply_line("554 delivery error: dd This user doesn't have an account");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->enhanced);
  auto mismatched = parse_reply_line("550 4.2.2 odd");  // class differs: part of the text
  ASSERT_TRUE(mismatched.ok());
  EXPECT_FALSE(mismatched->enhanced);
  EXPECT_FALSE(parse_reply_line("   ").ok());
  // Without a code: the text alone, or the enhanced code's class.
  auto bare = parse_reply_line("hello");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->code, 0);
  EXPECT_EQ(bare->text(), "hello");
  auto enh = parse_reply_line("5.1.1 <user@example.com>: Recipient address rejected");
  ASSERT_TRUE(enh.ok());
  EXPECT_EQ(enh->code, 0);
  ASSERT_TRUE(enh->enhanced);
  EXPECT_EQ(enh->enhanced->str(), "5.1.1");
  EXPECT_EQ(parse_reply_line("999 x")->code, 0);  // not a reply code: text
  auto qmail = parse_reply_line("Sorry, no mailbox here by that name. (#5.1.1)");
  ASSERT_TRUE(qmail.ok());
  EXPECT_EQ(qmail->enhanced->str(), "5.1.1");
  EXPECT_EQ(qmail->text(), "Sorry, no mailbox here by that name.");
}

// The code, enhanced code ("" for none) and, when given, the text a pasted line parses to.
void expect_pasted(std::string_view line, uint16_t code, std::string_view enhanced,
                   std::optional<std::string_view> text = std::nullopt) {
  SCOPED_TRACE(line);
  auto p = parse_pasted_reply(line);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->reply.code, code);
  EXPECT_EQ(p->reply.enhanced ? p->reply.enhanced->str() : std::string(), enhanced);
  if (text) {
    EXPECT_EQ(p->reply.text(), *text);
  }
}

TEST(Classifier, ParsesRepliesAsPastedFromLogs) {
  auto p = parse_pasted_reply(
      "host mx.example.com[192.0.2.1] said: 550-5.1.1 The email account that you tried to "
      "reach does not exist. Please try 550-5.1.1 double-checking the recipient's email "
      "address 550 5.1.1 for typos. (in reply to RCPT TO command)");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->reply.code, 550);
  EXPECT_EQ(p->reply.enhanced->str(), "5.1.1");
  EXPECT_EQ(p->reply.text(),
            "The email account that you tried to reach does not exist. Please try "
            "double-checking the recipient's email address for typos.");
  EXPECT_EQ(p->stage, Stage::kRcpt);
  EXPECT_EQ(p->context, "host mx.example.com[192.0.2.1] said:");
  auto dsn = parse_pasted_reply("Diagnostic-Code: smtp; 452 4.2.2 Mailbox full");
  ASSERT_TRUE(dsn.ok());
  EXPECT_EQ(dsn->reply.code, 452);
  EXPECT_EQ(dsn->reply.text(), "Mailbox full");
  auto exim = parse_pasted_reply(
      "SMTP error from remote mail server after end of data: 554 5.7.1 rejected as spam");
  ASSERT_TRUE(exim.ok());
  EXPECT_EQ(exim->stage, Stage::kEndOfData);
  EXPECT_EQ(exim->reply.code, 554);
  // PHPMailer prints the words first, then the codes behind labels.
  auto php = parse_pasted_reply(
      "SMTP Error: data not accepted. SMTP server error: DATA END command failed Detail: "
      "Ratelimit exceeded for account SMTP code: 451 Additional SMTP info: 4.7.1");
  ASSERT_TRUE(php.ok());
  EXPECT_EQ(php->reply.code, 451);
  EXPECT_EQ(php->reply.enhanced->str(), "4.7.1");
  EXPECT_EQ(php->reply.text(), "Ratelimit exceeded for account");
  // A bare log prefix before a code names the host, not the trouble.
  auto bare = parse_pasted_reply("host mx.example.com[192.0.2.1] said: 550");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->reply.text(), "");
  // .NET names the code in its own words first; the reply follows "The server response was:".
  auto net = parse_pasted_reply(
      "System.Net.Mail.SmtpException: Mailbox unavailable. The server response was: Relay "
      "access denied");
  ASSERT_TRUE(net.ok());
  EXPECT_EQ(net->reply.text(), "Relay access denied");
  EXPECT_EQ(net->context,
            "System.Net.Mail.SmtpException: Mailbox unavailable. The server response was:");
  // Python's smtplib: the reply is the quoted part of a (code, bytes) tuple.
  auto py = parse_pasted_reply(
      "smtplib.SMTPRecipientsRefused: {'a@example.net': (550, b'5.1.1 <a@example.net>: "
      "Recipient address rejected: User unknown')}");
  ASSERT_TRUE(py.ok());
  EXPECT_EQ(py->reply.code, 550);
  EXPECT_EQ(py->reply.enhanced->str(), "5.1.1");
  EXPECT_EQ(py->reply.text(), "<a@example.net>: Recipient address rejected: User unknown");
  // A reference number after '#' is not a success code; the enhanced code gives the class.
  auto ref = parse_pasted_reply("4.3.2 too many concurrent connections, max=5 #329 (0123456789AB)");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->reply.code, 0);
  EXPECT_EQ(ref->reply.enhanced->str(), "4.3.2");
  // An address or a port is not a code.
  auto ip = parse_pasted_reply("connect to 192.0.2.250:25: Connection refused");
  ASSERT_TRUE(ip.ok());
  EXPECT_EQ(ip->reply.code, 0);
  // Nor is a number glued to it by a colon (Exim's cipher and key size): the failure that
  // follows is read without a code, not as a 2xx success.
  expect_pasted(
      "H=mx.example [192.0.2.1]:43255 X=TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=no "
      "rejected RCPT <a@example.net>: 192.0.2.1 is in an RBL",
      0, "");
  // A wrapper that names the code and quotes the reply with it again.
  expect_pasted(
      "Error: SMTP code:550 msg:550-5.7.1 [192.0.2.1] The IP is not authorized to 550-5.7.1 "
      "send email directly to our servers.",
      550, "5.7.1", "[192.0.2.1] The IP is not authorized to send email directly to our servers.");
  // A success glued to a label's colon is still a success.
  expect_pasted("SMTP code:250 msg:250 2.0.0 Ok: queued as 4F1A2", 250, "2.0.0");
  // A reply quoted in JSON ends at its closing quote, not with the fields after it.
  expect_pasted(R"({"code":"EENVELOPE","response":"550 5.1.1 <a@example.net>: User unknown",)"
                R"("responseCode":550,"command":"RCPT TO"})",
                550, "5.1.1", "<a@example.net>: User unknown");
  // A full-width colon before the code, as Chinese and Japanese messages write it; but a
  // number after one is a number in the text.
  expect_pasted("发送失败，错误：550 5.1.1 User unknown", 550, "5.1.1", "User unknown");
  expect_pasted("发送失败：您今日的发送数量已超过限制（上限：500 封），请明天再试", 0, "");
  // A failure's code glued to a log's colon still counts ("said:454").
  expect_pasted("mx.example[192.0.2.1]said:454 Transient reject", 454, "", "Transient reject");
  // As a web page shows it: HTML entities and typographic quotes are the reply's own characters.
  expect_pasted("550 5.1.1 &lt;a@example.net&gt;: Recipient doesn&#39;t exist &amp; never did",
                550, "5.1.1", "<a@example.net>: Recipient doesn't exist & never did");
  expect_pasted("550 5.7.1 Sender\xC2\xA0" "isn’t “allowed”", 550, "5.7.1",
                "Sender isn't \"allowed\"");
  // As a log or JSON writer escaped it: the line breaks of a multi-line reply.
  expect_pasted(R"(SMTP error: 550-5.1.1 No such user\r\n550 5.1.1 try again\n)", 550, "5.1.1",
                "No such user try again");
  // Exchange quotes the reply in its NDR, and more follows: the reply ends at its closing
  // quote, not at an apostrophe or a quoted word inside it.
  expect_pasted(
      "Remote Server returned '550 5.7.1 Sender 'a@example.net' isn't allowed' Original message "
      "headers: Received: from x",
      550, "5.7.1", "Sender 'a@example.net' isn't allowed");
  // qmail's log writes blanks as underscores.
  expect_pasted(
      "delivery 42: failure: Connected_to_192.0.2.1_but_sender_was_rejected./Remote_host_said:"
      "_553_sorry,_your_envelope_sender_is_in_my_badmailfrom_list_(#5.7.1)/",
      553, "", "sorry, your envelope sender is in my badmailfrom list (#5.7.1)/");
  // KumoMTA's log keeps the reply's parts in fields.
  expect_pasted(
      R"({"type":"TransientFailure","response":{"code":451,"enhanced_code":{"class":4,)"
      R"("subject":7,"detail":1},"content":"Rate \"limited\"","command":"."},"num_attempts":1})",
      451, "4.7.1", "Rate \"limited\"");
  expect_pasted(R"({"response":{"code":550,"enhanced_code":null,"content":"No such user"}})", 550,
                "", "No such user");
}

TEST(Classifier, PhrasesOutweighCodesAndHintsNameTheProvider) {
  auto c = Classifier::parse(R"(
[[hint]]
provider = "acme"
text = 'acme\.example'
[[rule]]
name = "acme-only"
provider = "acme"
text = 'go away'
category = "reputation"
[[phrase]]
name = "conn"
text = 'too many connections'
category = "connection-limit"
weight = 15
[[phrase]]
name = "blocked"
text = 'blocked'
category = "reputation"
weight = 5
[[phrase]]
name = "enh-policy"
enhanced = "4.7.1"
category = "policy"
weight = 2
)",
                             "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const auto v = run(*c, "421 4.7.1 Too many connections, you are blocked");
  EXPECT_EQ(v.category, Category::kConnectionLimit);
  EXPECT_TRUE(v.by_words);
  const auto code_only = run(*c, "451 4.7.1 something else");
  EXPECT_EQ(code_only.category, Category::kPolicy);
  EXPECT_FALSE(code_only.by_words);
  EXPECT_EQ(run(*c, "554 go away").rule, "code");  // no provider, no hint
  auto pasted = parse_pasted_reply("host mx.acme.example said: 554 go away");
  ASSERT_TRUE(pasted.ok());
  Input in;
  in.reply = &pasted->reply;
  in.context = pasted->context;
  EXPECT_EQ(c->classify(in).rule, "acme-only");
}

}  // namespace
}  // namespace sluice::classify
