#include "spool/envelope.h"

#include <cstdio>

#include "core/json.h"
#include "core/text.h"

namespace sluice::spool {
namespace {

constexpr uint8_t kVersion = 1;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

// Zig-zag keeps small negative numbers small (times are never negative in practice).
void put_signed(std::string& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return fail();
      const auto b = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return fail();
  }
  int64_t signed_varint() {
    const uint64_t z = varint();
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  uint8_t byte() {
    if (in_.empty()) return static_cast<uint8_t>(fail());
    const auto b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
  }
  std::string string() {
    const uint64_t n = varint();
    if (!ok_ || n > in_.size()) {
      fail();
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }

 private:
  uint64_t fail() {
    ok_ = false;
    in_ = {};
    return 0;
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace

std::string format_id(MessageId id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

std::optional<MessageId> parse_id(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  MessageId id = 0;
  for (char c : s) {
    if (!is_hex(c)) return std::nullopt;
    id = (id << 4) | MessageId(hex_value(c));
  }
  return id;
}

std::string encode(const MessageMeta& m) {
  std::string out;
  out.reserve(128 + m.recipients.size() * 32);
  out.push_back(static_cast<char>(kVersion));
  put_varint(out, m.id);
  put_signed(out, m.received_ms);
  put_string(out, m.sender);
  put_varint(out, m.recipients.size());
  for (const auto& r : m.recipients) {
    put_string(out, r.address);
    out.push_back(static_cast<char>(r.notify));
    put_string(out, r.orcpt_type);
    put_string(out, r.orcpt);
  }
  out.push_back(static_cast<char>(m.body_type));
  out.push_back(static_cast<char>(m.smtputf8 ? 1 : 0));
  out.push_back(static_cast<char>(m.ret));
  put_string(out, m.envid);
  put_varint(out, m.size);
  put_string(out, m.client_ip);
  put_string(out, m.helo);
  put_string(out, m.auth_user);
  put_string(out, m.tenant);
  put_string(out, m.campaign);
  put_string(out, m.pool);
  put_varint(out, m.attempts);
  put_signed(out, m.next_due_ms);
  return out;
}

Result<MessageMeta> decode(std::string_view bytes) {
  Reader r(bytes);
  const uint8_t version = r.byte();
  if (!r.ok() || version != kVersion) {
    return error("spool metadata: unknown format version " + std::to_string(version));
  }
  MessageMeta m;
  m.id = r.varint();
  m.received_ms = r.signed_varint();
  m.sender = r.string();
  const uint64_t n = r.varint();
  if (n > bytes.size()) return error("spool metadata: corrupt recipient count");
  m.recipients.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    Recipient rc;
    rc.address = r.string();
    rc.notify = r.byte();
    rc.orcpt_type = r.string();
    rc.orcpt = r.string();
    m.recipients.push_back(std::move(rc));
  }
  m.body_type = static_cast<BodyType>(r.byte());
  m.smtputf8 = r.byte() != 0;
  m.ret = static_cast<DsnRet>(r.byte());
  m.envid = r.string();
  m.size = r.varint();
  m.client_ip = r.string();
  m.helo = r.string();
  m.auth_user = r.string();
  m.tenant = r.string();
  m.campaign = r.string();
  m.pool = r.string();
  m.attempts = static_cast<uint32_t>(r.varint());
  m.next_due_ms = r.signed_varint();
  if (!r.ok()) return error("spool metadata: truncated record");
  if (!r.at_end()) return error("spool metadata: trailing bytes");
  return m;
}

std::string meta_json(const MessageMeta& m, std::string_view queue) {
  std::string rcpts = "[";
  for (const auto& r : m.recipients) {
    if (rcpts.size() > 1) rcpts.push_back(',');
    append_json_string(rcpts, r.address);
  }
  rcpts.push_back(']');
  JsonLine j;
  j.str("id", format_id(m.id))
      .num("received_ms", m.received_ms)
      .str("sender", m.sender)
      .raw("recipients", rcpts)
      .unum("size", m.size)
      .unum("attempts", m.attempts)
      .num("next_due_ms", m.next_due_ms)
      .str("tenant", m.tenant)
      .str("campaign", m.campaign);
  if (!queue.empty()) j.raw("queue", queue);
  std::string out = j.finish();
  out.pop_back();  // the newline
  return out;
}

}  // namespace sluice::spool
