#include "queue/hold_queue.h"

namespace sluice::queue {

void HoldQueue::accept(const spool::MessageMeta& meta) {
  std::lock_guard lock(mu_);
  messages_.push_back({meta.id, meta.next_due_ms, static_cast<uint32_t>(meta.recipients.size())});
}

size_t HoldQueue::size() const {
  std::lock_guard lock(mu_);
  return messages_.size();
}

}  // namespace sluice::queue
