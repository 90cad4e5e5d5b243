// [tls]: MTA-STS and DANE switches, and per provider or recipient domain the TLS policy.
//
//   [tls]
//   mta_sts = true                  # RFC 8461 policies (default on)
//   dane = false                    # RFC 7672 TLSA, with a validating resolver (default off)
//   [tls.provider]
//   gmail = "verify"
//   [tls.domain]
//   "bank.example" = "required"
#include "config/config_reader.h"
#include "core/text.h"

namespace sluice::config {

namespace {

using std::chrono::milliseconds;

void read_policies(const toml::table& tls, const char* kind, const std::string& file,
                   std::map<std::string, TlsPolicy>& out, std::vector<ConfigError>& errors) {
  const toml::node* n = tls.get(kind);
  if (!n) return;
  const std::string prefix = std::string("tls.") + kind;
  if (!n->is_table()) {
    errors.push_back({file, n->source().begin.line, n->source().begin.column, prefix,
                      std::string("expected a table [tls.") + kind + "] of name = \"policy\""});
    return;
  }
  Section sec(n->as_table(), prefix, file, &errors);
  for (const auto& [k, v] : *n->as_table()) {
    TlsPolicy p = TlsPolicy::kOpportunistic;
    sec.parsed<TlsPolicy>(k.str(), p, parse_tls_policy);
    out[to_lower(k.str())] = p;
  }
  sec.finish();
}

}  // namespace

void read_tls_section(const toml::table& root, const std::string& file, TlsConfig& out,
                      std::vector<ConfigError>& errors) {
  const toml::node* n = root.get("tls");
  if (!n) return;
  if (!n->is_table()) {
    errors.push_back({file, n->source().begin.line, n->source().begin.column, "tls",
                      "expected a table [tls]"});
    return;
  }
  Section sec(n->as_table(), "tls", file, &errors);
  sec.boolean("mta_sts", out.mta_sts);
  sec.boolean("dane", out.dane);
  uint32_t port = out.mta_sts_port;
  sec.u32("mta_sts_port", port, 1, 65535);
  out.mta_sts_port = static_cast<uint16_t>(port);
  sec.duration("mta_sts_timeout", out.mta_sts_timeout, milliseconds(100), milliseconds(300'000));
  sec.duration("mta_sts_retry", out.mta_sts_retry, milliseconds(1'000),
               milliseconds(86'400'000));
  sec.known("provider");
  sec.known("domain");
  sec.finish();
  read_policies(*n->as_table(), "provider", file, out.providers, errors);
  read_policies(*n->as_table(), "domain", file, out.domains, errors);
}

}  // namespace sluice::config
