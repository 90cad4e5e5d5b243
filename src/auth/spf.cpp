#include "auth/spf.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "core/cidr.h"
#include "core/text.h"

namespace sluice::auth {
namespace {

constexpr int kMaxLookups = 10;
constexpr int kMaxVoid = 2;
constexpr int kMaxMx = 10;

struct SpfError {
  std::string result, problem;
};

class Evaluator {
 public:
  Evaluator(const SpfDns& dns, std::string ip, std::string sender)
      : dns_(dns), ip_(std::move(ip)), sender_(std::move(sender)) {
    unsigned char b[16];
    v6_ = inet_pton(AF_INET6, ip_.c_str(), b) == 1 && ip_.find('.') == std::string::npos;
  }

  // The result for `domain`, with what decided it; throws SpfError for permerror/temperror.
  std::pair<std::string, std::string> eval(const std::string& domain, std::string* record) {
    const dns::Answer txt = dns_.txt(domain);
    if (txt.status == dns::Answer::Status::kFailed)
      throw SpfError{"temperror", "TXT " + domain + ": " + txt.error};
    const std::string rec = spf_record(txt.values);
    if (rec == "several") throw SpfError{"permerror", domain + " has more than one SPF record"};
    if (record) *record = rec;
    if (rec.empty()) return {"none", ""};
    std::istringstream terms(rec.substr(6));
    std::string term, redirect;
    while (terms >> term) {
      const size_t eq = term.find('=');
      const size_t colon = term.find_first_of(":/");
      if (eq != std::string::npos && (colon == std::string::npos || eq < colon)) {
        const std::string name = to_lower(term.substr(0, eq));
        if (name == "redirect") {
          if (!redirect.empty()) throw SpfError{"permerror", domain + ": two redirect modifiers"};
          redirect = term.substr(eq + 1);
        }
        continue;  // exp= and unknown modifiers do not change the result
      }
      char qualifier = '+';
      std::string m = term;
      if (!m.empty() && std::string("+-~?").find(m[0]) != std::string::npos) {
        qualifier = m[0];
        m.erase(0, 1);
      }
      if (matches(m, domain)) return {result_of(qualifier), term};
    }
    if (!redirect.empty()) {
      count();
      const std::string target = expand(redirect, domain);
      auto r = eval(target, nullptr);
      if (r.first == "none")
        throw SpfError{"permerror", "redirect=" + target + " has no SPF record"};
      r.second = "redirect=" + target + " (" + r.second + ")";
      return r;
    }
    return {"neutral", "(no term matched: neutral)"};
  }

  int lookups() const { return lookups_; }

 private:
  static std::string result_of(char q) {
    return q == '-' ? "fail" : q == '~' ? "softfail" : q == '?' ? "neutral" : "pass";
  }

  void count() {
    if (++lookups_ > kMaxLookups)
      throw SpfError{"permerror", "more than 10 DNS-querying terms (RFC 7208 4.6.4): flatten "
                               "includes into ip4:/ip6: terms"};
  }

  void void_lookup(const dns::Answer& a) {
    if (a.missing() && ++voids_ > kMaxVoid)
      throw SpfError{"permerror", "more than 2 lookups found nothing (RFC 7208 4.6.4)"};
    if (a.status == dns::Answer::Status::kFailed) throw SpfError{"temperror", a.error};
  }

  // "mx:example.com/24//64" → domain "example.com", cidr4 "24", cidr6 "64".
  static void target(const std::string& arg, std::string& name, std::string& c4, std::string& c6) {
    std::string rest = arg;
    if (const size_t dd = rest.find("//"); dd != std::string::npos) {
      c6 = rest.substr(dd + 2);
      rest.resize(dd);
    }
    if (const size_t s = rest.find('/'); s != std::string::npos) {
      c4 = rest.substr(s + 1);
      rest.resize(s);
    }
    name = rest;
  }

  bool address_in(const std::vector<std::string>& addresses, const std::string& c4,
                  const std::string& c6) const {
    for (const std::string& a : addresses) {
      const std::string len = v6_ ? c6 : c4;
      auto range = Cidr::parse(len.empty() ? a : a + "/" + len);
      if (range && range->contains(ip_)) return true;
    }
    return false;
  }

  std::vector<std::string> addresses(const std::string& name) {
    const dns::Answer a = v6_ ? dns_.aaaa(name) : dns_.a(name);
    void_lookup(a);
    return a.values;
  }

  bool matches(const std::string& m, const std::string& domain) {
    const size_t colon = m.find(':');
    const std::string name = to_lower(m.substr(0, std::min(colon, m.find('/'))));
    const std::string arg = colon == std::string::npos ? std::string() : m.substr(colon + 1);
    std::string spec = arg;  // "domain/c4//c6" or "/c4//c6" (a and mx without a domain)
    if (colon == std::string::npos && m.find('/') != std::string::npos) spec = m.substr(m.find('/'));
    if (name == "all") return true;
    if (name == "ip4" || name == "ip6") {
      if ((name == "ip6") != v6_) return false;
      auto range = Cidr::parse(arg);
      if (!range) throw SpfError{"permerror", "bad " + m};
      return range->contains(ip_);
    }
    if (name == "include") {
      count();
      const std::string target_domain = expand(arg, domain);
      try {
        const auto r = eval(target_domain, nullptr);
        if (r.first == "none")
          throw SpfError{"permerror", "include:" + target_domain + " has no SPF record"};
        return r.first == "pass";
      } catch (const SpfError& e) {
        throw SpfError{e.result, "include:" + target_domain + ": " + e.problem};
      }
    }
    if (name == "a" || name == "mx") {
      count();
      std::string host, c4, c6;
      target(spec, host, c4, c6);
      host = host.empty() ? domain : expand(host, domain);
      if (name == "a") return address_in(addresses(host), c4, c6);
      const dns::Answer mx = dns_.mx(host);
      void_lookup(mx);
      if (mx.values.size() > static_cast<size_t>(kMaxMx))
        throw SpfError{"permerror", "mx:" + host + " has more than 10 MX hosts"};
      for (const std::string& h : mx.values)
        if (address_in(addresses(h), c4, c6)) return true;
      return false;
    }
    if (name == "ptr") {
      count();  // deprecated (RFC 7208 5.5): sluice never relies on it matching
      return false;
    }
    if (name == "exists") {
      count();
      const dns::Answer a = dns_.a(expand(arg, domain));
      void_lookup(a);
      return a.ok();
    }
    throw SpfError{"permerror", "unknown mechanism " + m};
  }

  // Macro expansion (RFC 7208 7): %{letter[digits][r][delimiters]}, %%, %_, %-.
  std::string expand(const std::string& in, const std::string& domain) const {
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i] != '%' || i + 1 >= in.size()) {
        out.push_back(in[i]);
        continue;
      }
      const char c = in[++i];
      if (c == '%') out.push_back('%');
      else if (c == '_') out.push_back(' ');
      else if (c == '-') out += "%20";
      else if (c == '{') {
        const size_t end = in.find('}', i);
        if (end == std::string::npos) throw SpfError{"permerror", "bad macro in " + in};
        out += macro(in.substr(i + 1, end - i - 1), domain);
        i = end;
      } else {
        throw SpfError{"permerror", "bad macro in " + in};
      }
    }
    return out;
  }

  std::string macro(const std::string& spec, const std::string& domain) const {
    if (spec.empty()) throw SpfError{"permerror", "empty macro"};
    const char letter = static_cast<char>(std::tolower(static_cast<unsigned char>(spec[0])));
    const size_t at = sender_.rfind('@');
    std::string value;
    switch (letter) {
      case 's': value = sender_; break;
      case 'l': value = at == std::string::npos ? "postmaster" : sender_.substr(0, at); break;
      case 'o': value = at == std::string::npos ? sender_ : sender_.substr(at + 1); break;
      case 'd': value = domain; break;
      case 'h': value = domain; break;
      case 'v': value = v6_ ? "ip6" : "in-addr"; break;
      case 'i':
        if (!v6_) {
          value = ip_;
        } else {  // dot-separated nibbles
          unsigned char b[16];
          inet_pton(AF_INET6, ip_.c_str(), b);
          static const char* hex = "0123456789abcdef";
          for (int k = 0; k < 16; ++k) {
            value += std::string(1, hex[b[k] >> 4]) + "." + hex[b[k] & 0xf];
            if (k < 15) value.push_back('.');
          }
        }
        break;
      default: throw SpfError{"permerror", std::string("unknown macro letter ") + spec[0]};
    }
    // Transformers: digits (keep that many parts from the right), r (reverse).
    size_t k = 1;
    int keep = 0;
    while (k < spec.size() && std::isdigit(static_cast<unsigned char>(spec[k])))
      keep = keep * 10 + (spec[k++] - '0');
    const bool reverse = k < spec.size() && (spec[k] == 'r' || spec[k] == 'R');
    if (keep == 0 && !reverse) return value;
    std::vector<std::string> parts;
    std::string part;
    for (char ch : value) {
      if (ch == '.') {
        parts.push_back(part);
        part.clear();
      } else {
        part.push_back(ch);
      }
    }
    parts.push_back(part);
    if (reverse) std::reverse(parts.begin(), parts.end());
    if (keep > 0 && static_cast<size_t>(keep) < parts.size())
      parts.erase(parts.begin(), parts.end() - keep);
    std::string joined;
    for (size_t p = 0; p < parts.size(); ++p) joined += (p ? "." : "") + parts[p];
    return joined;
  }

  const SpfDns& dns_;
  std::string ip_, sender_;
  bool v6_ = false;
  int lookups_ = 0, voids_ = 0;
};

}  // namespace

std::string spf_record(const std::vector<std::string>& txt) {
  std::string found;
  for (const std::string& t : txt) {
    if (!istarts_with(t, "v=spf1") || (t.size() > 6 && t[6] != ' ')) continue;
    if (!found.empty()) return "several";
    found = t;
  }
  return found;
}

SpfResult check_host(const SpfDns& dns, const std::string& ip, const std::string& domain,
                     const std::string& sender) {
  SpfResult r;
  Evaluator e(dns, ip, sender);
  try {
    auto [result, matched] = e.eval(to_lower(domain), &r.record);
    r.result = result;
    r.matched = matched;
  } catch (const SpfError& err) {
    r.result = err.result;
    r.problem = err.problem;
  }
  r.lookups = e.lookups();
  return r;
}

}  // namespace sluice::auth
