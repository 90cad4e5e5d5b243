// Where accepted and recovered messages enter the queue.
//
// The listener calls accept() after the spool has a message; start-up recovery calls it for
// every spooled message. The scheduler (issue #4) implements this to move due messages to their
// ready queues; until then HoldQueue keeps them. Implementations are thread-safe.
#pragma once

#include "spool/envelope.h"

namespace sluice::queue {

class Intake {
 public:
  virtual ~Intake() = default;
  virtual void accept(const spool::MessageMeta& meta) = 0;
};

}  // namespace sluice::queue
