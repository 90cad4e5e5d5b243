// Reads one TOML table into typed fields, collecting errors instead of stopping at the first.
//
// A Section is used like a schema: each call names a key, the field it fills, and its bounds;
// a missing key leaves the field's default. finish() reports every key nobody asked for. Errors
// name the file, line, column and dotted key. Internal to src/config (it exposes toml++).
// Not thread-safe; one reader per load.
#pragma once

#include <toml++/toml.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "config/config.h"

namespace sluice::config {

// Parses TOML text; on a syntax error appends one ConfigError (file, line, column) and returns
// nullopt.
std::optional<toml::table> parse_toml(std::string_view text, const std::string& name,
                                      std::vector<ConfigError>& errors);

// The same for data files outside the configuration (provider and classification rules): the
// error is "NAME:LINE: description".
Result<toml::table> parse_toml_data(std::string_view text, const std::string& name);

// [source.*], [pool.*], [tenant.*] and [egress] into c.egress (src/config/egress.cpp); after
// [delivery], whose source_ip and helo_name make the implicit default source.
void read_egress_sections(const toml::table& root, const std::string& file, Config& c,
                          std::vector<ConfigError>& errors);

// "none" | "opportunistic" | "required" | "verify" (an error message, or nullopt).
std::optional<std::string> parse_tls_policy(std::string_view s, TlsPolicy& out);

// [tls], [tls.provider] and [tls.domain] into `out` (src/config/tls.cpp).
void read_tls_section(const toml::table& root, const std::string& file, TlsConfig& out,
                      std::vector<ConfigError>& errors);

// [dkim."DOMAIN"] into c.dkim (src/config/dkim.cpp).
void read_dkim_sections(const toml::table& root, const std::string& file, Config& c,
                        std::vector<ConfigError>& errors);

// The tables of a kind ([source.a], [source.b]): name -> table, each error named.
template <class Fn>
void each_table(const toml::table& root, const char* kind, const std::string& file,
                std::vector<ConfigError>& errors, Fn fn) {
  const toml::node* list = root.get(kind);
  if (!list) return;
  if (!list->is_table()) {
    errors.push_back({file, list->source().begin.line, list->source().begin.column, kind,
                      std::string("expected tables [") + kind + ".NAME]"});
    return;
  }
  for (const auto& [name, node] : *list->as_table()) {
    const std::string key = std::string(kind) + "." + std::string(name.str());
    if (!node.is_table()) {
      errors.push_back(
          {file, node.source().begin.line, node.source().begin.column, key, "expected a table"});
      continue;
    }
    fn(std::string(name.str()), key, *node.as_table(), node);
  }
}

class Section;
// The keys of one shaping table (connection_limit, max_message_rate, …), into `out` (only those
// present): [shaping.*] and [source.NAME] use it.
void read_shaping_limits(const toml::table& t, Section& s, ShapingOverride& out);

// The warm-up schedules shipped in etc/warmup.toml (compiled in).
std::map<std::string, WarmupSchedule> builtin_warmups();

class Section {
 public:
  // `table` may be null (section absent: every field keeps its default).
  Section(const toml::table* table, std::string prefix, std::string file,
          std::vector<ConfigError>* errors);

  void string(std::string_view key, std::string& out, bool allow_empty = false);
  void u32(std::string_view key, uint32_t& out, uint32_t min, uint32_t max);
  void boolean(std::string_view key, bool& out);
  void size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max);
  void duration(std::string_view key, Duration& out, Duration min, Duration max);
  // An array of strings, each checked by `check` (error message or nullopt when valid).
  void strings(std::string_view key, std::vector<std::string>& out,
               const std::function<std::optional<std::string>(std::string_view)>& check);
  // Records an error against a key (for checks across several keys).
  void fail(std::string_view key, std::string message);
  // A string checked by `parse`, which returns an error message or nullopt when valid.
  template <class T>
  void parsed(std::string_view key, T& out,
              const std::function<std::optional<std::string>(std::string_view, T&)>& parse);

  // Marks a key as read elsewhere (so finish() does not call it unknown).
  void known(std::string_view key) { known_.emplace(key); }
  // Reports keys present in the table that no call above asked for.
  void finish();

 private:
  const toml::node* find(std::string_view key);
  void error(const toml::node* at, std::string_view key, std::string message);
  std::optional<std::string> string_value(std::string_view key, const toml::node* n);

  const toml::table* table_;
  std::string prefix_;
  std::string file_;
  std::vector<ConfigError>* errors_;
  std::unordered_set<std::string> known_;
};

template <class T>
void Section::parsed(std::string_view key, T& out,
                     const std::function<std::optional<std::string>(std::string_view, T&)>& parse) {
  const toml::node* n = find(key);
  if (!n) return;
  auto text = string_value(key, n);
  if (!text) return;
  T value = out;
  if (auto msg = parse(*text, value)) {
    error(n, key, *msg);
    return;
  }
  out = std::move(value);
}

// One of a few names, for Section::parsed: sets `out` to the value named `s`, or says which
// names are expected ("expected \"a\", \"b\" or \"c\"").
template <class E, size_t N>
std::optional<std::string> parse_named(std::string_view s, E& out,
                                       const std::pair<std::string_view, E> (&names)[N]) {
  std::string expected = "expected ";
  for (size_t i = 0; i < N; ++i) {
    if (s == names[i].first) {
      out = names[i].second;
      return std::nullopt;
    }
    if (i > 0) expected += i + 1 == N ? " or " : ", ";
    expected.push_back('"');  // appended piecewise: GCC 12's -Wrestrict misfires on operator+
    expected.append(names[i].first);
    expected.push_back('"');
  }
  return expected;
}

}  // namespace sluice::config
