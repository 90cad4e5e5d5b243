// One JSON object on one line: the shape of every log record sluice writes.
//
// JsonLine appends fields in the order given and escapes strings per RFC 8259 (control octets
// as \u00XX; invalid UTF-8 octets as \u00XX of their byte value, so a record is always valid
// JSON even when a client sent garbage). Not thread-safe; one per record.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// Epoch milliseconds as the log writes times: "2026-11-30T16:16:55.123Z" (UTC, RFC 3339).
std::string utc_timestamp(int64_t epoch_ms);

// Appends s to out as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

class JsonLine {
 public:
  JsonLine() { out_.push_back('{'); }

  JsonLine& str(std::string_view key, std::string_view value);
  JsonLine& num(std::string_view key, int64_t value);
  JsonLine& unum(std::string_view key, uint64_t value);
  JsonLine& boolean(std::string_view key, bool value);
  // value must already be valid JSON (an array or object built elsewhere).
  JsonLine& raw(std::string_view key, std::string_view json);
  // "ts": the current UTC time, RFC 3339 with milliseconds.
  JsonLine& timestamp();

  // The finished line with its '\n'. The JsonLine must not be used afterwards.
  std::string finish();
  // The finished object without the '\n' (an element of a list, an HTTP body).
  std::string object() {
    std::string s = finish();
    s.pop_back();
    return s;
  }

 private:
  void key(std::string_view k);
  std::string out_;
};

}  // namespace sluice
