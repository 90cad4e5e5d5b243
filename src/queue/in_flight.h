// A message being worked on by the queue manager (manager.cpp and settle.cpp); owned by its
// strand.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outbound/delivery.h"
#include "queue/manager.h"

namespace sluice::queue {

struct Manager::InFlight {
  spool::MessageMeta meta;
  // What its jobs read (made once, when the first job is): the recipient list is not copied per
  // job. Changes to `meta` later (attempts) are the manager's own business.
  std::shared_ptr<const spool::MessageMeta> shared;
  std::string pool;        // the pool it is sent through
  std::string tenant;      // its tenant key (FairSchedule)
  size_t outstanding = 0;  // domains being resolved + jobs not yet reported
  std::vector<std::optional<outbound::RecipientResult>> results;  // by recipient index
  std::vector<std::string> remote;  // host that answered, by recipient
  // A throttle signal or greylisting deferred this recipient, uncharged, until then; 0: its
  // result (if transient) charges an attempt.
  std::vector<int64_t> defer_until;
  uint32_t requeues = 0;  // uncharged returns to a ready queue in this round
};

}  // namespace sluice::queue
