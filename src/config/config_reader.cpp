#include "config/config_reader.h"

#include <fstream>
#include <sstream>

#include "core/text.h"

namespace sluice::config {
namespace {

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

}  // namespace

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::optional<toml::table> parse_toml(std::string_view text, const std::string& name,
                                      std::vector<ConfigError>& errors) {
  try {
    return toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    errors.push_back(
        {name, e.source().begin.line, e.source().begin.column, "", std::string(e.description())});
    return std::nullopt;
  }
}

Result<toml::table> parse_toml_data(std::string_view text, const std::string& name) {
  std::vector<ConfigError> errors;
  auto t = parse_toml(text, name, errors);
  if (!t) return error(name + ":" + std::to_string(errors[0].line) + ": " + errors[0].message);
  return std::move(*t);
}

Section::Section(const toml::table* table, std::string prefix, std::string file,
                 std::vector<ConfigError>* errors)
    : table_(table), prefix_(std::move(prefix)), file_(std::move(file)), errors_(errors) {}

const toml::node* Section::find(std::string_view key) {
  known_.emplace(key);
  return table_ ? table_->get(key) : nullptr;
}

void Section::error(const toml::node* at, std::string_view key, std::string message) {
  ConfigError e;
  e.file = file_;
  if (at) {
    e.line = at->source().begin.line;
    e.column = at->source().begin.column;
  }
  e.key = prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  e.message = std::move(message);
  errors_->push_back(std::move(e));
}

std::optional<std::string> Section::string_value(std::string_view key, const toml::node* n) {
  if (auto s = n->value<std::string>(); s && n->is_string()) return *s;
  error(n, key, "expected a string, found " + type_name(*n));
  return std::nullopt;
}

void Section::string(std::string_view key, std::string& out, bool allow_empty) {
  const toml::node* n = find(key);
  if (!n) return;
  auto s = string_value(key, n);
  if (!s) return;
  if (!allow_empty && s->empty()) {
    error(n, key, "must not be empty");
    return;
  }
  out = std::move(*s);
}

void Section::boolean(std::string_view key, bool& out) {
  const toml::node* n = find(key);
  if (!n) return;
  if (!n->is_boolean()) {
    error(n, key, "expected true or false, found " + type_name(*n));
    return;
  }
  out = n->as_boolean()->get();
}

void Section::u32(std::string_view key, uint32_t& out, uint32_t min, uint32_t max) {
  const toml::node* n = find(key);
  if (!n) return;
  if (!n->is_integer()) {
    error(n, key, "expected an integer, found " + type_name(*n));
    return;
  }
  const int64_t v = n->as_integer()->get();
  if (v < int64_t(min) || v > int64_t(max)) {
    error(n, key,
          "value " + std::to_string(v) + " is out of range " + std::to_string(min) + ".." +
              std::to_string(max));
    return;
  }
  out = static_cast<uint32_t>(v);
}

void Section::size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) {
  const toml::node* n = find(key);
  if (!n) return;
  std::optional<uint64_t> v;
  if (n->is_integer()) {
    const int64_t i = n->as_integer()->get();
    if (i >= 0) v = uint64_t(i);
  } else if (n->is_string()) {
    v = parse_size(n->as_string()->get());
  }
  if (!v) {
    error(n, key, "expected a size such as 1048576, \"512KiB\" or \"50MB\"");
    return;
  }
  if (*v < min || *v > max) {
    error(n, key,
          "size " + std::to_string(*v) + " is out of range " + std::to_string(min) + ".." +
              std::to_string(max) + " octets");
    return;
  }
  out = *v;
}

void Section::duration(std::string_view key, Duration& out, Duration min, Duration max) {
  const toml::node* n = find(key);
  if (!n) return;
  std::optional<Duration> v;
  if (n->is_string()) v = parse_duration(n->as_string()->get());
  if (!v) {
    error(n, key, "expected a duration such as \"250ms\", \"30s\", \"5m\", \"1h\" or \"2d\"");
    return;
  }
  if (*v < min || *v > max) {
    error(n, key,
          "duration " + format_duration(*v) + " is out of range " + format_duration(min) + ".." +
              format_duration(max));
    return;
  }
  out = *v;
}

void Section::strings(std::string_view key, std::vector<std::string>& out,
                      const std::function<std::optional<std::string>(std::string_view)>& check) {
  const toml::node* n = find(key);
  if (!n) return;
  const toml::array* arr = n->as_array();
  if (!arr) {
    error(n, key, "expected an array of strings, found " + type_name(*n));
    return;
  }
  std::vector<std::string> values;
  bool ok = true;
  for (const toml::node& item : *arr) {
    if (!item.is_string()) {
      error(&item, key, "expected a string, found " + type_name(item));
      ok = false;
      continue;
    }
    const std::string& s = item.as_string()->get();
    if (auto msg = check(s)) {
      error(&item, key, *msg);
      ok = false;
      continue;
    }
    values.push_back(s);
  }
  if (ok) out = std::move(values);
}

void Section::fail(std::string_view key, std::string message) {
  error(table_ ? table_->get(key) : nullptr, key, std::move(message));
}

void Section::finish() {
  if (!table_) return;
  for (const auto& [k, v] : *table_) {
    if (!known_.count(std::string(k.str()))) error(&v, k.str(), "unknown key");
  }
}

}  // namespace sluice::config
