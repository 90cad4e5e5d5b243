#include "auth/auth_check.h"

#include <algorithm>

#include "auth/spf.h"
#include "core/text.h"
#include "dkim/signer.h"

namespace sluice::auth {
namespace {

std::string tag(const std::vector<std::pair<std::string, std::string>>& t, const std::string& k) {
  for (const auto& [key, value] : t)
    if (iequals(key, k)) return value;
  return {};
}

std::string org_domain(const std::string& d) {
  const size_t last = d.rfind('.');
  if (last == std::string::npos || last == 0) return d;
  const size_t before = d.rfind('.', last - 1);
  return before == std::string::npos ? d : d.substr(before + 1);
}

// The record after adding `ip` to it (before its "all" term), or a new one.
std::string spf_with(const std::string& record, const std::string& ip) {
  const std::string term = (ip.find(':') != std::string::npos ? "ip6:" : "ip4:") + ip;
  if (record.empty()) return "v=spf1 " + term + " -all";
  for (const char* all : {" -all", " ~all", " ?all", " +all", " all"}) {
    if (const size_t at = record.rfind(all); at != std::string::npos)
      return record.substr(0, at) + " " + term + record.substr(at);
  }
  return record + " " + term;
}

void spf(const config::Config& cfg, const std::string& domain, dns::Lookup& dns,
         std::vector<Finding>& out) {
  SpfDns sd{[&](const std::string& n) { return dns.txt(n); },
            [&](const std::string& n) { return dns.a(n); },
            [&](const std::string& n) { return dns.aaaa(n); },
            [&](const std::string& n) { return dns.mx(n); }};
  for (const auto& [name, src] : cfg.egress.sources) {
    if (src.address.empty()) {
      out.push_back({"spf", "source " + name, "warning",
                     "no address configured (the system chooses): cannot check it",
                     "give [source." + name + "] its address"});
      continue;
    }
    const SpfResult r = check_host(sd, src.address, domain, "postmaster@" + domain);
    Finding f{"spf", "source " + name + " (" + src.address + ")", "ok", "", ""};
    if (r.result == "pass") {
      f.message = "pass (" + r.matched + "), " + std::to_string(r.lookups) + " of 10 lookups";
    } else if (r.result == "none") {
      f.status = "problem";
      f.message = domain + " publishes no SPF record";
      f.fix = "publish TXT " + domain + " \"" + spf_with("", src.address) + "\"";
    } else if (r.result == "permerror" || r.result == "temperror") {
      f.status = "problem";
      f.message = r.result + ": " + r.problem;
      f.fix = r.result == "permerror" ? "correct the record: " + r.problem
                                      : "check the domain's name servers answer";
    } else {
      f.status = "problem";
      f.message = r.result + " (" + r.matched + "): " + src.address + " is not authorized";
      f.fix = "publish TXT " + domain + " \"" + spf_with(r.record, src.address) + "\"";
    }
    out.push_back(std::move(f));
  }
}

// The configured domain whose keys sign `domain`'s mail (itself or a parent).
const config::DkimDomain* signing_domain(const config::Config& cfg, const std::string& domain) {
  std::string d = domain;
  while (!d.empty()) {
    if (auto it = cfg.dkim.find(d); it != cfg.dkim.end()) return &it->second;
    const size_t dot = d.find('.');
    if (dot == std::string::npos) break;
    d.erase(0, dot + 1);
  }
  return nullptr;
}

void dkim(const config::Config& cfg, const std::string& domain, dns::Lookup& dns,
          std::vector<Finding>& out) {
  const config::DkimDomain* d = signing_domain(cfg, domain);
  if (!d) {
    out.push_back({"dkim", domain, "problem", "no DKIM key is configured for " + domain,
                   "add [dkim.\"" + domain + "\"] with selector and key (doc/config.md)"});
    return;
  }
  for (const config::DkimKey& k : d->keys) {
    const std::string name = k.selector + "._domainkey." + d->domain;
    Finding f{"dkim", "selector " + k.selector + " (d=" + d->domain + ")", "ok", "", ""};
    auto expected = dkim::public_record(k.key_path);
    if (!expected) {
      out.push_back({"dkim", f.subject, "problem", expected.error().message, "check the key file"});
      continue;
    }
    const dns::Answer txt = dns.txt(name);
    std::string published;
    for (const std::string& t : txt.values)
      if (!tag(tags(t), "p").empty() || t.find("p=") != std::string::npos) published = t;
    const auto want = tags(*expected);
    if (txt.status == dns::Answer::Status::kFailed) {
      f.status = "problem";
      f.message = "TXT " + name + ": " + txt.error;
    } else if (published.empty()) {
      f.status = "problem";
      f.message = "no key published at " + name;
      f.fix = "publish TXT " + name + " \"" + *expected + "\"";
    } else {
      const auto got = tags(published);
      const std::string k_got = tag(got, "k").empty() ? "rsa" : to_lower(tag(got, "k"));
      if (tag(got, "p").empty()) {
        f.status = "problem";
        f.message = "the key at " + name + " is revoked (empty p=)";
        f.fix = "publish TXT " + name + " \"" + *expected + "\", or sign with another selector";
      } else if (tag(got, "p") != tag(want, "p") || k_got != tag(want, "k")) {
        f.status = "problem";
        f.message = "the key published at " + name + " is not the configured key's (" + k.key_path + ")";
        f.fix = "publish TXT " + name + " \"" + *expected + "\"";
      } else {
        f.message = "the published " + k_got + " key matches " + k.key_path;
      }
    }
    out.push_back(std::move(f));
  }
}

void dmarc(const config::Config& cfg, const std::string& domain, dns::Lookup& dns,
           bool spf_pass, std::vector<Finding>& out) {
  std::string where = "_dmarc." + domain;
  dns::Answer txt = dns.txt(where);
  std::string record;
  auto find = [&] {
    for (const std::string& t : txt.values)
      if (istarts_with(t, "v=DMARC1")) record = t;
  };
  find();
  if (record.empty() && org_domain(domain) != domain) {
    where = "_dmarc." + org_domain(domain);
    txt = dns.txt(where);
    find();
  }
  if (record.empty()) {
    out.push_back({"dmarc", domain, "problem", "no DMARC record at _dmarc." + domain,
                   "publish TXT _dmarc." + domain + " \"v=DMARC1; p=none; rua=mailto:dmarc-reports@" +
                       domain + "\" (then quarantine, then reject, as the reports allow)"});
    return;
  }
  const auto t = tags(record);
  const std::string p = to_lower(tag(t, "p"));
  if (p != "none" && p != "quarantine" && p != "reject") {
    out.push_back({"dmarc", domain, "problem", where + " has no valid p= (\"" + record + "\")",
                   "publish TXT " + where + " \"v=DMARC1; p=none; rua=mailto:dmarc-reports@" +
                       domain + "\""});
    return;
  }
  out.push_back({"dmarc", domain, p == "none" ? "warning" : "ok",
                 "policy p=" + p + " at " + where +
                     (p == "none" ? ": monitoring only; large providers want quarantine or reject "
                                    "once reports show every source aligned"
                                  : ""),
                 ""});
  // Alignment: DKIM's d= against the From domain; SPF's MAIL FROM domain is the From domain here
  // (sluice keeps the sender's envelope), so it aligns when SPF passes.
  const config::DkimDomain* d = signing_domain(cfg, domain);
  const bool strict = to_lower(tag(t, "adkim")) == "s";
  const bool dkim_aligned =
      d && (d->domain == domain || (!strict && org_domain(d->domain) == org_domain(domain)));
  Finding a{"dmarc", "alignment", "ok", "", ""};
  if (dkim_aligned) {
    a.message = "DKIM d=" + d->domain + " aligns with From " + domain +
                (spf_pass ? "; SPF passes for every source" : "");
  } else if (spf_pass) {
    a.status = "warning";
    a.message = "only SPF aligns: forwarding breaks SPF, and DMARC then fails";
    a.fix = "sign with d=" + domain + " ([dkim.\"" + domain + "\"])";
  } else {
    a.status = "problem";
    a.message = "neither DKIM nor SPF aligns with From " + domain + ": DMARC fails";
    a.fix = d ? "sign with d=" + domain + (strict ? " (adkim=s wants the exact domain)" : "")
              : "configure [dkim.\"" + domain + "\"] and publish its key";
  }
  out.push_back(std::move(a));
}

void fcrdns(const config::Config& cfg, dns::Lookup& dns, std::vector<Finding>& out) {
  for (const auto& [name, src] : cfg.egress.sources) {
    if (src.address.empty()) continue;
    const std::string ehlo = to_lower(!src.ehlo.empty()                ? src.ehlo
                                      : !cfg.delivery.helo_name.empty() ? cfg.delivery.helo_name
                                                                        : cfg.server.hostname);
    Finding f{"fcrdns", "source " + name + " (" + src.address + ")", "ok", "", ""};
    const dns::Answer ptr = dns.ptr(src.address);
    std::vector<std::string> confirmed;
    for (std::string host : ptr.values) {
      host = to_lower(host);
      if (!host.empty() && host.back() == '.') host.pop_back();
      const dns::Answer fwd = src.address.find(':') != std::string::npos ? dns.aaaa(host) : dns.a(host);
      if (std::find(fwd.values.begin(), fwd.values.end(), src.address) != fwd.values.end())
        confirmed.push_back(host);
    }
    if (ptr.values.empty()) {
      f.status = "problem";
      f.message = "no PTR record for " + src.address;
      f.fix = "have the address's owner publish PTR " + src.address + " → " + ehlo +
              ", and A/AAAA " + ehlo + " → " + src.address;
    } else if (confirmed.empty()) {
      f.status = "problem";
      f.message = "PTR " + ptr.values.front() + " does not resolve back to " + src.address;
      f.fix = "publish A/AAAA " + ptr.values.front() + " → " + src.address;
    } else if (std::find(confirmed.begin(), confirmed.end(), ehlo) == confirmed.end()) {
      f.status = "problem";
      f.message = "EHLO " + ehlo + " is not the address's confirmed name (" + confirmed.front() + ")";
      f.fix = "set [source." + name + "] ehlo = \"" + confirmed.front() + "\", or point the PTR at " + ehlo;
    } else {
      f.message = src.address + " ↔ " + ehlo + " (forward-confirmed)";
    }
    out.push_back(std::move(f));
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> tags(const std::string& record) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t at = 0;
  while (at <= record.size()) {
    size_t end = record.find(';', at);
    if (end == std::string::npos) end = record.size();
    const std::string_view part = trim(std::string_view(record).substr(at, end - at));
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos) {
      std::string key(trim(part.substr(0, eq)));
      std::string value(trim(part.substr(eq + 1)));
      if (iequals(key, "p")) std::erase_if(value, [](char c) { return c == ' ' || c == '\t'; });
      out.emplace_back(std::move(key), std::move(value));
    }
    at = end + 1;
  }
  return out;
}

std::vector<Finding> auth_check(const config::Config& cfg, const std::string& raw_domain,
                                dns::Lookup& dns) {
  const std::string domain = to_lower(raw_domain);
  std::vector<Finding> out;
  spf(cfg, domain, dns, out);
  const bool spf_pass = std::all_of(out.begin(), out.end(), [](const Finding& f) {
    return f.check != "spf" || f.status == "ok";
  });
  dkim(cfg, domain, dns, out);
  dmarc(cfg, domain, dns, spf_pass, out);
  fcrdns(cfg, dns, out);
  return out;
}

}  // namespace sluice::auth
