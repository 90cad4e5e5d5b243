// What the dispatcher keeps per site: a lane per egress source (one shaping key (source, site):
// its controller, connections and what the receiver said) and a ready queue per pool (the jobs
// waiting for any of the pool's lanes). Receivers count per sending IP, so a lane is shared by
// every pool that holds its source. Internal to src/queue; owned by the manager's strand.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dns/destination.h"
#include "queue/fair_queue.h"
#include "outbound/delivery.h"
#include "shaping/controller.h"

namespace sluice::queue {

// Where learned shaping state lives in the spool database: PREFIX + "ADDRESS|SITE".
inline constexpr std::string_view kShapingStatePrefix = "shaping/";

struct SiteState;

// One shaping key: (egress source, site).
struct Lane {
  std::string key;      // "ADDRESS|SITE": connections name their lane by it; learned state too
  std::string source;   // the source's name ([source.NAME], "default")
  std::string address;  // its address; "" = the system's choice
  SiteState* site = nullptr;
  uint32_t connections = 0;  // open or being set up
  uint32_t established = 0;  // working (banner and EHLO accepted)
  std::unique_ptr<shaping::Controller> ctl;
  std::unique_ptr<boost::asio::steady_timer> wake;  // hold or suspension ends
  int64_t wake_at_ms = 0;                           // 0: not armed
  std::deque<int64_t> recent;                       // delivery times, the last few seconds
  std::deque<int64_t> refusals;  // unexplained refusals of messages on working connections, ditto
  uint64_t delivered = 0, throttled = 0, refused_connections = 0;
  std::string last_signal;  // the reply ("421 4.7.0 …")
  std::string last_category, last_rule, last_stage;
  int64_t last_signal_ms = 0;
  size_t next_queue = 0;  // round-robin over the pools this lane serves
};

// The jobs for a site through one pool, taken by any lane of the pool; its tenants in turn.
struct ReadyQueue {
  std::string pool;
  FairQueue<outbound::Job> ready;  // bodies are loaded when a connection takes the job
  std::vector<std::pair<Lane*, uint32_t>> lanes;  // the pool's sources here, with their weights
  bool waiting_slot = false;  // in the slot waiters: the global connection cap stopped it
  uint32_t connections() const {
    uint32_t n = 0;
    for (const auto& [lane, weight] : lanes) n += lane->connections;
    return n;
  }
  bool serves(const Lane& l) const {
    for (const auto& [lane, weight] : lanes) {
      if (lane == &l) return true;
    }
    return false;
  }
};

// One site (the receiving infrastructure: its MX hosts).
struct SiteState {
  std::string name;  // sorted MX hosts
  dns::Destination dest;
  std::vector<std::string> domains;                       // recipient domains seen for it
  std::map<std::string, std::unique_ptr<Lane>> lanes;     // by source name
  std::map<std::string, std::unique_ptr<ReadyQueue>> queues;  // by pool name
  int64_t idle_since_ms = 0;  // nothing open and nothing waiting since then; 0: busy
  uint32_t connections() const {
    uint32_t n = 0;
    for (const auto& [name, lane] : lanes) n += lane->connections;
    return n;
  }
};

}  // namespace sluice::queue
