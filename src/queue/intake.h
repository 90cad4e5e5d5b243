// Where accepted and recovered messages enter the queue.
//
// The listener calls accept() after the spool has a message. The queue manager (manager.h)
// implements it. Implementations are thread-safe.
#pragma once

#include "spool/envelope.h"

namespace sluice::queue {

class Intake {
 public:
  virtual ~Intake() = default;
  virtual void accept(const spool::MessageMeta& meta) = 0;
};

}  // namespace sluice::queue
