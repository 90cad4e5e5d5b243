// [dkim."DOMAIN"]: the keys that sign mail from DOMAIN (src/dkim/signer.h loads them).
//
//   [dkim."example.org"]
//   selector = "s2026"
//   key = "etc/dkim/example.org.s2026.pem"          # PEM private key, RSA or Ed25519
//   also = [{ selector = "ed2026", key = "…" }]      # more keys: one signature each
//   canonicalization = "relaxed/relaxed"             # header/body: relaxed or simple
//   headers = ["from", "to", …]                      # default: default_dkim_headers()
//   oversign = ["from", "subject", …]                # default: default_dkim_oversign()
#include <filesystem>

#include "config/config_reader.h"
#include "core/text.h"

namespace sluice::config {

const std::vector<std::string>& default_dkim_headers() {
  static const std::vector<std::string> h = {
      "from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from",
      "resent-to", "resent-cc", "in-reply-to", "references", "list-id", "list-help",
      "list-unsubscribe", "list-unsubscribe-post", "list-subscribe", "list-post", "list-owner",
      "list-archive", "message-id", "mime-version", "content-type", "content-transfer-encoding",
      "content-id", "content-description", "feedback-id"};
  return h;
}

const std::vector<std::string>& default_dkim_oversign() {
  static const std::vector<std::string> o = {
      "from", "reply-to", "subject", "date", "to", "cc", "message-id", "mime-version",
      "content-type", "list-unsubscribe", "list-unsubscribe-post"};
  return o;
}

namespace {

std::optional<std::string> check_name(std::string_view s) {
  if (s.empty() || s.find_first_of(": \t") != std::string_view::npos)
    return "expected a header field name, such as \"from\"";
  return std::nullopt;
}

// A key: its selector (a DNS label) and a readable key file.
void read_key(Section& sec, DkimKey& k) {
  sec.string("selector", k.selector);
  sec.string("key", k.key_path);
  if (k.selector.empty() || k.key_path.empty()) {
    sec.fail(k.selector.empty() ? "selector" : "key", "a DKIM key needs selector and key");
    return;
  }
  if (k.selector.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") !=
      std::string::npos)
    sec.fail("selector", "a selector is DNS labels: letters, digits, '-', '.'");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(k.key_path, ec))
    sec.fail("key", "cannot read " + k.key_path);
}

}  // namespace

void read_dkim_sections(const toml::table& root, const std::string& file, Config& c,
                        std::vector<ConfigError>& errors) {
  each_table(root, "dkim", file, errors,
             [&](const std::string& name, const std::string& key, const toml::table& t,
                 const toml::node&) {
               DkimDomain d;
               d.domain = to_lower(name);
               Section sec(&t, key, file, &errors);
               DkimKey first;
               read_key(sec, first);
               d.keys.push_back(first);
               if (const toml::node* also = t.get("also")) {
                 sec.known("also");
                 const toml::array* list = also->as_array();
                 if (!list) {
                   sec.fail("also", "expected a list of { selector = \"…\", key = \"…\" }");
                 } else {
                   for (const toml::node& item : *list) {
                     if (!item.is_table()) {
                       sec.fail("also", "expected { selector = \"…\", key = \"…\" }");
                       continue;
                     }
                     Section more(item.as_table(), key + ".also", file, &errors);
                     DkimKey k;
                     read_key(more, k);
                     more.finish();
                     d.keys.push_back(k);
                   }
                 }
               }
               std::string canon = "relaxed/relaxed";
               sec.string("canonicalization", canon);
               const size_t slash = canon.find('/');
               d.header_canon = canon.substr(0, slash);
               d.body_canon = slash == std::string::npos ? "simple" : canon.substr(slash + 1);
               for (const std::string& part : {d.header_canon, d.body_canon}) {
                 if (part != "relaxed" && part != "simple") {
                   sec.fail("canonicalization",
                            "expected \"relaxed/relaxed\", \"relaxed/simple\", \"simple/simple\" "
                            "or \"simple/relaxed\"");
                   break;
                 }
               }
               d.headers = default_dkim_headers();
               d.oversign = default_dkim_oversign();
               sec.strings("headers", d.headers, check_name);
               sec.strings("oversign", d.oversign, check_name);
               bool signs_from = false;
               for (const auto& h : d.headers) signs_from = signs_from || iequals(h, "from");
               if (!signs_from) sec.fail("headers", "the From field must be signed (RFC 6376 5.4)");
               sec.finish();
               c.dkim[d.domain] = std::move(d);
             });
}

}  // namespace sluice::config
