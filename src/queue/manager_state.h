// The queue manager's private state: a message being worked on and a site with its shaping key.
// Internal to src/queue (manager.cpp and manager_sites.cpp); owned by the manager's strand.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "queue/manager.h"
#include "shaping/controller.h"

namespace sluice::queue {

// Where learned shaping state lives in the spool database: PREFIX + "SOURCE|SITE".
inline constexpr std::string_view kShapingStatePrefix = "shaping/";

struct Manager::InFlight {
  spool::MessageMeta meta;
  // What its jobs read (made once, when the first job is): the recipient list is not copied per
  // job. Changes to `meta` later (attempts) are the manager's own business.
  std::shared_ptr<const spool::MessageMeta> shared;
  size_t outstanding = 0;  // domains being resolved + jobs not yet reported
  std::vector<std::optional<outbound::RecipientResult>> results;  // by recipient index
  std::vector<std::string> remote;  // host that answered, by recipient
  // A throttle signal or greylisting deferred this recipient, uncharged, until then; 0: its
  // result (if transient) charges an attempt.
  std::vector<int64_t> defer_until;
  uint32_t requeues = 0;  // uncharged returns to a ready queue in this round
};

// One site and its shaping key (egress source, site).
struct Manager::Site {
  std::string name;  // the site (sorted MX hosts)
  std::string key;   // the shaping key: "SOURCE|SITE"
  dns::Destination dest;
  std::vector<std::string> domains;  // recipient domains seen for it
  std::deque<outbound::Job> ready;   // bodies are loaded when a connection takes the job
  uint32_t connections = 0;          // open or being set up
  uint32_t established = 0;          // working (banner and EHLO accepted)
  bool waiting_slot = false;         // in slot_waiters_: the global connection cap stopped it
  std::unique_ptr<shaping::Controller> ctl;
  std::unique_ptr<boost::asio::steady_timer> wake;  // hold or suspension ends
  int64_t wake_at_ms = 0;                           // 0: not armed
  std::deque<int64_t> recent;                       // delivery times, the last few seconds
  std::deque<int64_t> refusals;  // unexplained refusals of messages on working connections, ditto
  uint64_t delivered = 0, throttled = 0, refused_connections = 0;
  std::string last_signal;  // the reply ("421 4.7.0 …")
  std::string last_category, last_rule, last_stage;
  int64_t last_signal_ms = 0;
  int64_t idle_since_ms = 0;  // nothing open and nothing waiting since then; 0: busy
};

}  // namespace sluice::queue
