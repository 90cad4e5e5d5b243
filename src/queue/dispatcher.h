// The dispatcher: the delivery side of the queue manager. It keeps, per site, a ready queue per
// pool and a lane per egress source (src/queue/lane.h), opens connections from the pool's
// sources as each lane's shaping key allows (src/shaping: connection limit, hold, suspension,
// connection and message rate, deliveries per connection), and hands connections the jobs.
//
// Source choice is per connection and automatic: a job waits in its (pool, site) queue, and any
// lane of the pool whose key allows a connection takes it; among those, the one with the fewest
// connections for its weight opens next. A suspended, held or saturated source simply opens
// nothing and the pool's other sources carry its traffic (PowerMTA's backoff rerouting); when
// no source of a pool can send for long, the queue's jobs are parked (handed back to the
// manager, uncharged, until the earliest source reopens).
//
// Global caps: [delivery] max_connections (a site takes at most three quarters; sites over the
// cap wait their turn) and max_bytes_in_flight (message bodies held by connections).
//
// Threads: everything here runs on the manager's strand (the manager owns the dispatcher and
// posts to it); next_job() is the coroutine side that hops onto the strand.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "outbound/client.h"
#include "queue/lane.h"
#include "shaping/warmup.h"

namespace sluice::spool {
class Spool;
}
namespace sluice::observe {
class EventLog;
class Gauges;
}

namespace sluice::queue {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

struct DispatcherOptions {
  config::DeliveryConfig delivery;
  config::ShapingConfig shaping;
  config::EgressConfig egress;
  size_t max_in_flight = 10'000;
};

// An operator's run-time limits for the lanes it selects (the admin API's /api/admin/limit/v1),
// over the configured ones until it ends or is cancelled.
struct LimitOverride {
  uint64_t id = 0;
  std::string provider, site, source;  // "" = any; at least one is given
  config::ShapingOverride limits;
  std::string reason;
  int64_t until_ms = 0;
  bool matches(std::string_view provider, std::string_view site, std::string_view source) const;
  bool matches(const Lane& lane) const;
};

// A job handed out: where it waits and which lane has it.
struct JobRef {
  uint64_t message = 0;  // spool::MessageId
  std::string site;
  std::string pool;
  std::string lane;         // the lane key once a connection took it
  uint64_t body_bytes = 0;  // held by a connection since it took the job, until its report
  uint32_t recipients = 0;  // in the job
};

class Dispatcher {
 public:
  struct Hooks {
    // A job leaves its ready queue uncharged until `until_ms` (parked): `why` is the reason
    // for the recipients' synthesized 451.
    std::function<void(const JobRef& ref, const outbound::Job& job, int64_t until_ms,
                       const std::string& why)>
        parked;
    // A job that failed before a connection could take it (its body was unreadable).
    std::function<void(outbound::JobReport)> failed;
  };

  Dispatcher(boost::asio::io_context& ioc, Strand& strand, DispatcherOptions options,
             spool::Spool& spool, observe::EventLog& log, outbound::ClientContext client,
             Hooks hooks, std::function<int64_t()> clock);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The site a resolved destination lands on (its lanes' learned state read back).
  SiteState& site_for(const dns::Destination& d, const std::string& domain);
  // A new job for `pool` at the site; returns its token. Call open() when all are added.
  uint64_t add(SiteState& site, const std::string& pool, uint64_t message, outbound::Job job);
  // Opens what the site's lanes allow for the pool's queue, after keeping the queue's share.
  void open(SiteState& site, const std::string& pool);
  // A job comes back (throttled, uncharged) to the front of its queue; opens what is allowed.
  void requeue(uint64_t token, outbound::Job job);

  // Removes from every ready queue the jobs `pred` selects (a job and its site; an admin
  // action), with their refs.
  std::vector<std::pair<JobRef, outbound::Job>> take_if(
      const std::function<bool(const outbound::Job&, const std::string& site)>& pred);
  JobRef* job(uint64_t token);
  void forget_job(uint64_t token) { jobs_.erase(token); }
  // The connection is done with the job's body.
  void release_body(uint64_t token);
  Lane* lane(const std::string& key);
  SiteState* site(const std::string& name);
  // Every job of the message (admin view).
  std::vector<const JobRef*> jobs_of(uint64_t message) const;
  // Every job handed out and not yet reported, by token (admin views).
  const std::unordered_map<uint64_t, JobRef>& jobs() const { return jobs_; }

  // A lane's limits changed (log, persist) or it was suspended (the queues it serves reopen
  // through the pool's other lanes, or park).
  void changed(Lane& lane, const shaping::Change& c, const std::string& reply = {},
               std::string_view category = {}, std::string_view rule = {});
  void reopen(SiteState& site);
  // Whether a lane of the job's pool other than `except` may still send to its site (neither
  // suspended nor unavailable).
  bool other_lane_open(const JobRef& ref, const Lane& except);

  // The connection side (JobSource, posted to the strand by the manager).
  boost::asio::awaitable<std::optional<outbound::Job>> next_job(const std::string& lane,
                                                                uint32_t done);
  void connection_established(const std::string& lane);
  void connection_closed(const std::string& lane, bool established);

  // Probing, decay and forgetting idle sites; reschedules itself every second.
  void tick();
  void stop();
  uint32_t connections() const { return connections_; }
  const std::unordered_map<std::string, std::unique_ptr<SiteState>>& sites() const {
    return sites_;
  }
  const DispatcherOptions& options() const { return options_; }

  // A reload's new [shaping]: every lane's limits again (tuning applies to lanes made later).
  void set_shaping(config::ShapingConfig shaping);
  // Operators' actions on lanes (dispatcher_admin.cpp). An override applies at once to the
  // lanes it selects and to lanes made later; it returns how many lanes it changed.
  size_t add_override(LimitOverride& o);
  std::optional<LimitOverride> remove_override(uint64_t id);
  std::vector<LimitOverride> overrides();  // those in force (ended ones are removed)
  // Suspends every lane of the source (and those made later) until `until_ms`; 0 lifts it.
  // The pool's other sources carry its traffic, or the queues park. Returns the lanes it held.
  size_t suspend_source(const std::string& source, int64_t until_ms, const std::string& reason);
  // The site a recipient domain was last seen landing on (null when none in memory).
  const SiteState* site_of_domain(const std::string& domain) const;

  // Every lane's configured and learned limits, open connections, last signal and suspension,
  // as a JSON array (the admin API).
  std::string lanes_json() const;
  // One recipient domain's site as far as this server has met it, for `queue explain`.
  std::string domain_json(const std::string& domain) const;
  // Every source: its address, pools, warm-up (day, today's counts and caps per provider) and
  // its lanes' learned limits, as a JSON array (`sluice queue sources`).
  std::string sources_json();
  // Every lane's connections and limits and every ready queue's jobs, as gauges.
  void gauges(observe::Gauges& g) const;

 private:
  struct Take {
    std::optional<outbound::Job> job;
    int64_t wait_ms = 0;  // message pacing: ask again after this long
    int64_t idle_ms = 0;  // the key's idle_timeout: how long a connection may wait
  };
  Take take_next(const std::string& lane, uint32_t done);
  std::optional<outbound::Job> take_job(SiteState& site, ReadyQueue& q, Lane& lane);
  void open_connections(SiteState& site, ReadyQueue& q);
  void wake_at(Lane& lane, int64_t at_ms);
  void park(SiteState& site, ReadyQueue& q, int64_t until_ms, const std::string& why,
            size_t keep = 0);
  void keep_share(SiteState& site, ReadyQueue& q);
  void wait_slot(SiteState& site, ReadyQueue& q);
  void grant_slots();
  void save_learned(const Lane& lane);
  std::unique_ptr<Lane> make_lane(SiteState& site, const config::EgressSource& src,
                                  const std::string& domain);
  // A lane's limits: the configuration's (provider, site, domain, source), then overrides.
  config::ShapingLimits lane_limits(const SiteState& site, const config::EgressSource& src,
                                    const std::string& domain) const;
  void apply_overrides();  // every lane's limits again
  void expire_overrides(int64_t now_ms);
  const outbound::ClientContext& client_for(const std::string& source) const;
  // The source's warm-up (made on first use: day 1 is its configured start, the start an
  // earlier run saved, or now); null for an established source.
  shaping::Warmup* warmup(const std::string& source);
  // 0 when the lane's warm-up lets it send one more message to its site now; else how long
  // until its cap resets.
  int64_t warm_wait(Lane& lane, int64_t now_ms);
  void warm_count(Lane& lane, int64_t now_ms);

  boost::asio::io_context& ioc_;
  Strand& strand_;
  DispatcherOptions options_;  // shaping changes with a reload (set_shaping)
  spool::Spool& spool_;
  observe::EventLog& log_;
  Hooks hooks_;
  std::function<int64_t()> now_ms_;
  // One client context per source (its bind address and EHLO name); never changed after
  // construction: connections keep references to them.
  std::unordered_map<std::string, outbound::ClientContext> clients_;
  std::map<std::string, std::unique_ptr<shaping::Warmup>> warmups_;  // by source name
  std::set<std::string> priority_tenants_;  // [tenant.X] priority: first in every ready queue
  std::vector<LimitOverride> overrides_;     // operators' limits, in the order given
  uint64_t next_override_ = 1;
  // Operators' suspensions of sources: source → (until, reason).
  std::map<std::string, std::pair<int64_t, std::string>> source_holds_;

  std::unordered_map<std::string, std::unique_ptr<SiteState>> sites_;
  std::unordered_map<std::string, Lane*> lanes_;  // by key
  std::unordered_map<uint64_t, JobRef> jobs_;     // by job token
  uint64_t next_token_ = 1;
  uint32_t connections_ = 0;
  uint64_t body_bytes_ = 0;  // message bodies held by connections (JobRef::body_bytes summed)
  // Queues waiting under the global caps: (site, pool).
  std::deque<std::pair<std::string, std::string>> slot_waiters_;
  boost::asio::steady_timer tick_timer_;
  bool stopping_ = false;
};

}  // namespace sluice::queue
