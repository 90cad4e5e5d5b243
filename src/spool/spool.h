// The spool: where a message lives from the moment sluice accepts it until it is delivered,
// bounced or expired. Nothing is acknowledged to a client before the spool says it is durable.
//
// Contract:
//  - store() hands over a message (metadata + body) and calls `done` once it is durable on disk
//    (synced) or has failed. `done` runs on the spool's writer thread: post to your own
//    executor from it, and never block in it. Messages stored at about the same time share one
//    synced write (group commit).
//  - A failed store leaves nothing behind that recovery would bring back.
//  - recover() streams every stored message's metadata, oldest first, to `each`; it is called
//    once at start-up, before new messages arrive.
//  - update() and remove() go through the same group-committed, synced write path: a delivered
//    message must not come back after a crash, and a retry schedule must survive one.
//
// Implementations: RocksSpool (rocks_spool.h). Thread-safe: every method may be called from any
// thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "spool/envelope.h"

namespace sluice::spool {

// A body in up to two pieces, so headers sluice adds need not be copied in front of the body.
struct Body {
  std::string prefix;  // e.g. Received: and Message-ID: header lines
  std::string data;    // the message as received
  size_t size() const { return prefix.size() + data.size(); }
};

class Spool {
 public:
  using Done = std::function<void(const Status&)>;

  virtual ~Spool() = default;

  // Takes ownership of the body. meta.id must be fresh (from next_id()).
  virtual void store(MessageMeta meta, Body body, Done done) = 0;

  // A fresh, unique, time-ordered id.
  virtual MessageId next_id() = 0;

  // Rewrites a message's metadata (after an attempt). `done` as for store().
  virtual void update(MessageMeta meta, Done done) = 0;
  // Deletes metadata and body (delivered, bounced or expired). `done` as for store().
  virtual void remove(MessageId id, Done done) = 0;

  virtual Result<MessageMeta> read_meta(MessageId id) = 0;
  virtual Result<std::string> read_body(MessageId id) = 0;

  // Streams every stored message's metadata to `each`, in id (arrival) order. Returns the number
  // recovered, or the first error. Records that cannot be decoded are reported, not skipped.
  virtual Result<uint64_t> recover(const std::function<void(MessageMeta)>& each) = 0;

  // Small state beside the messages (learned shaping limits): written at once, not synced — a
  // crash may lose the last changes, never a message. Keys are namespaced by their owner
  // ("shaping/…").
  virtual Status put_state(const std::string& key, const std::string& value) = 0;
  // Every state record whose key starts with `prefix`, in key order.
  virtual Result<std::vector<std::pair<std::string, std::string>>> read_state(
      const std::string& prefix) = 0;
};

}  // namespace sluice::spool
