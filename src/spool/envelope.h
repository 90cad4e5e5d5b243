// What the spool keeps about a message besides its body: the envelope as received, the DSN
// parameters, the tags that later stages route by, and the delivery state.
//
// A MessageMeta is small (no body) and is rewritten on every delivery attempt; the body is
// written once. The binary form (encode/decode) is documented in doc/spool.md and versioned:
// decode() refuses a version it does not know rather than guessing.
//
// Plain values; thread-safe to copy between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::spool {

using MessageId = uint64_t;

// 16 lower-case hex digits: how ids appear in logs, replies and admin commands.
std::string format_id(MessageId id);
std::optional<MessageId> parse_id(std::string_view s);
struct MessageMeta;
// One JSON object (one line, no newline) with a message's envelope and schedule: what
// `sluice spool ls` and `sluice queue explain` print. `queue`, when given, is a JSON value
// added as "queue" (where the queue manager has the message).
std::string meta_json(const MessageMeta& m, std::string_view queue = {});

enum class BodyType : uint8_t { kUnspecified = 0, k7Bit = 1, k8BitMime = 2, kBinaryMime = 3 };
enum class DsnRet : uint8_t { kUnspecified = 0, kFull = 1, kHeaders = 2 };

// NOTIFY bits (RFC 3461): 0 means "not specified" (the default: FAILURE, and DELAY at will).
enum NotifyBits : uint8_t {
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};

struct Recipient {
  std::string address;     // as received: local@domain
  uint8_t notify = 0;      // NotifyBits
  std::string orcpt_type;  // ORCPT addr-type ("rfc822"), empty when absent
  std::string orcpt;       // ORCPT address, decoded
  friend bool operator==(const Recipient&, const Recipient&) = default;
};

struct MessageMeta {
  MessageId id = 0;
  int64_t received_ms = 0;  // Unix time in milliseconds
  std::string sender;       // reverse-path; empty for the null sender <>
  std::vector<Recipient> recipients;
  BodyType body_type = BodyType::kUnspecified;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::kUnspecified;
  std::string envid;  // ENVID, decoded
  uint64_t size = 0;  // octets of the stored body (with the headers sluice added)

  // Where it came from.
  std::string client_ip;
  std::string helo;
  std::string auth_user;  // empty when not authenticated

  // Tags for routing and reports (set by injection policy; empty means default).
  std::string tenant;
  std::string campaign;
  std::string pool;

  // Delivery state.
  uint32_t attempts = 0;
  int64_t next_due_ms = 0;  // Unix ms of the next attempt

  friend bool operator==(const MessageMeta&, const MessageMeta&) = default;
};

std::string encode(const MessageMeta& m);
Result<MessageMeta> decode(std::string_view bytes);

}  // namespace sluice::spool
