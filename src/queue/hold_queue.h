// HoldQueue: the queue before delivery exists — it keeps a small record of each message (id,
// due time, recipient count) so start-up recovery and the listener have somewhere real to hand
// messages, and so the record's memory cost is measurable. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "queue/intake.h"

namespace sluice::queue {

struct QueuedMessage {
  spool::MessageId id;
  int64_t next_due_ms;
  uint32_t recipients;
};

class HoldQueue final : public Intake {
 public:
  void accept(const spool::MessageMeta& meta) override;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::vector<QueuedMessage> messages_;  // guarded by mu_
};

}  // namespace sluice::queue
