#include "tlspolicy/mta_sts.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/text.h"

namespace sluice::tlspolicy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string host_key(std::string_view h) {
  std::string s = to_lower(h);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::optional<std::string> parse_sts_txt(std::string_view record) {
  // sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
  std::optional<std::string> id;
  bool first = true;
  while (!record.empty()) {
    const size_t semi = record.find(';');
    const std::string_view field = trim(record.substr(0, semi));
    record = semi == std::string_view::npos ? std::string_view() : record.substr(semi + 1);
    if (field.empty()) {
      if (first) return std::nullopt;
      continue;
    }
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = trim(field.substr(0, eq));
    const std::string_view value = trim(field.substr(eq + 1));
    if (first) {
      if (key != "v" || value != "STSv1") return std::nullopt;
      first = false;
      continue;
    }
    if (key == "id") {
      if (value.empty() || value.size() > 32 ||
          !std::all_of(value.begin(), value.end(),
                       [](unsigned char c) { return std::isalnum(c) != 0; }))
        return std::nullopt;
      id = std::string(value);
    }
  }
  return id;
}

StsParse parse_sts_policy(std::string_view text) {
  StsPolicy p;
  bool version = false, mode = false, age = false;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    line = trim(line);
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return {std::nullopt, "line " + std::to_string(line_no) + ": expected \"key: value\""};
    const std::string_view key = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (key == "version") {
      if (value != "STSv1") return {std::nullopt, "version is not STSv1"};
      version = true;
    } else if (key == "mode") {
      if (value == "enforce") p.mode = StsPolicy::Mode::kEnforce;
      else if (value == "testing") p.mode = StsPolicy::Mode::kTesting;
      else if (value == "none") p.mode = StsPolicy::Mode::kNone;
      else return {std::nullopt, "mode \"" + std::string(value) + "\" is not enforce, testing or none"};
      mode = true;
    } else if (key == "max_age") {
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || end != value.data() + value.size() || value.size() > 10)
        return {std::nullopt, "max_age \"" + std::string(value) + "\" is not a number"};
      p.max_age = static_cast<uint32_t>(std::min<uint64_t>(v, 31'557'600));
      age = true;
    } else if (key == "mx") {
      std::string m = host_key(value);
      if (m.empty() || m.find_first_of(" \t/") != std::string::npos)
        return {std::nullopt, "mx \"" + std::string(value) + "\" is not a host name"};
      p.mx.push_back(std::move(m));
    }  // other keys: ignored (section 3.2, extensions)
  }
  if (!version) return {std::nullopt, "no version: STSv1"};
  if (!mode) return {std::nullopt, "no mode"};
  if (!age) return {std::nullopt, "no max_age"};
  if (p.mode != StsPolicy::Mode::kNone && p.mx.empty())
    return {std::nullopt, "no mx: a policy in testing or enforce mode lists its MX hosts"};
  return {p, {}};
}

bool mx_allowed(const StsPolicy& policy, std::string_view host_in) {
  const std::string host = host_key(host_in);
  for (const std::string& pattern : policy.mx) {
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
      // "*.example.com": one label, then ".example.com".
      const std::string_view suffix = std::string_view(pattern).substr(1);
      if (host.size() > suffix.size() && host.ends_with(suffix) &&
          host.find('.') == host.size() - suffix.size())
        return true;
    } else if (host == pattern) {
      return true;
    }
  }
  return false;
}

std::string_view mode_name(StsPolicy::Mode m) {
  switch (m) {
    case StsPolicy::Mode::kEnforce: return "enforce";
    case StsPolicy::Mode::kTesting: return "testing";
    case StsPolicy::Mode::kNone: break;
  }
  return "none";
}

}  // namespace sluice::tlspolicy
