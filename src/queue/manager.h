// The queue manager (Postfix's qmgr): takes every accepted or recovered message, keeps deferred
// ones in the scheduled queue, resolves each recipient domain to a site, hands the dispatcher
// one job per (message, domain, transaction) for the message's pool, reads every reply
// (src/queue/reading.h) and acts on the verdict: throttle signals adapt the lane (the shaping
// key (source, site)) and put the message back in its ready queue (or park it until a
// suspension ends) without charging an attempt; greylisting delays only that message. Each
// message is settled when all its jobs have reported: delivered recipients leave the spool,
// permanent failures and expired recipients get a DSN (never for the null sender), the rest is
// retried with exponential backoff. A fresh message that is due goes straight to work.
//
// The journey through it, one file each:
//   manager.cpp     intake, scheduling, resolution, reports and their verdicts;
//   settle.cpp      a message's end of round: what the spool keeps, retries, DSNs;
//   dispatcher.cpp  sites, ready queues per pool, lanes per source, connections (dispatcher.h);
//   reading.cpp     classification plus behaviour, and signals applied to a lane (reading.h).
//
// At most max_in_flight messages are being worked on at once; the rest wait in the scheduled
// queue (16 bytes each in memory; metadata is read back from the spool when due).
//
// Threads: all state below is owned by one strand; accept(), report(), connection_*() and
// sites_json() post to it and may be called from any thread.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "classify/classifier.h"
#include "config/config.h"
#include "dns/resolver.h"
#include "outbound/client.h"
#include "queue/admin_rules.h"
#include "queue/cadence.h"
#include "queue/intake.h"
#include "queue/schedule.h"

namespace sluice::spool {
class Spool;
}
namespace sluice::observe {
class EventLog;
class Metrics;
class RecentReplies;
}

namespace sluice::queue {

struct ManagerOptions {
  config::QueueConfig queue;
  config::DeliveryConfig delivery;
  config::ShapingConfig shaping;
  const classify::Classifier* classifier = nullptr;  // null: the code-based fallback
  config::EgressConfig egress;  // sources, pools, tenants (never empty: see EgressConfig)
  std::string hostname;         // DSN Reporting-MTA and From
  observe::Metrics* metrics = nullptr;  // counters of results (null: none kept)
  observe::RecentReplies* replies = nullptr;  // the latest refusals per provider (null: none)
  size_t max_in_flight = 10'000;
  // The time (Unix ms); the system clock when unset.
  std::function<int64_t()> clock;
};

class Dispatcher;
class ReplyReader;
struct JobRef;
struct Lane;

class Manager final : public Intake, public outbound::JobSource {
 public:
  Manager(boost::asio::io_context& ioc, ManagerOptions options, spool::Spool& spool,
          dns::Resolver& resolver, observe::EventLog& log, outbound::ClientContext client);
  ~Manager() override;
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Intake.
  void accept(const spool::MessageMeta& meta) override;
  // Start-up recovery, before the io_context runs: only (due, id) is kept in memory.
  void recovered(spool::MessageId id, int64_t due_ms);
  // After recovery: start what is due.
  void begin();

  // JobSource (connections call these).
  boost::asio::awaitable<std::optional<outbound::Job>> next_job(const std::string& lane,
                                                                uint32_t done) override;
  void report(outbound::JobReport report) override;
  void connection_established(const std::string& lane) override;
  void connection_closed(const std::string& lane, bool established) override;

  // Every lane's (shaping key's) configured and learned limits, open connections, last signal and
  // suspension, as a JSON array (the admin API); `done` runs on the manager's strand.
  void sites_json(std::function<void(std::string)> done);
  // The gauges of the queue and of every lane, in the Prometheus text format (doc/metrics.md);
  // `done` runs on the strand.
  void gauges_text(std::function<void(std::string)> done);
  // The admin API's operator actions (src/queue/admin.cpp, doc/http.md): `what` is "suspend",
  // "bounce", "rebind" or "limit", `method` GET (list), POST (add) or DELETE (cancel), `body`
  // JSON; `done` gets an HTTP status and a JSON body, on the strand.
  void admin_request(std::string method, std::string what, std::string body,
                     std::function<void(int, std::string)> done);
  // What waits, grouped `by` site, provider, source, pool, tenant, campaign or domain, as a JSON
  // object (src/queue/summary.cpp); 400 for another `by`. `done` runs on the strand.
  void queue_summary(std::string by, std::function<void(int, std::string)> done);
  static const std::vector<std::string>& summary_keys();
  // Every egress source with its pools, warm-up and lanes (Dispatcher::sources_json).
  void sources_json(std::function<void(std::string)> done);
  // Where the queue has one (spooled) message and what holds it, as a JSON object: in flight
  // (its jobs and their sites) or scheduled, and for each recipient domain the site it lands on
  // with that site's state (limit, suspension, last signal). `done` runs on the strand.
  void message_json(const spool::MessageMeta& meta, std::function<void(std::string)> done);

  // A configuration reload (SIGHUP): new [queue] timings and [shaping] limits, applied on the
  // strand — every lane's limits at once (with the operators' overrides over them); new retry
  // times for the next attempts. max_in_flight stays what it was at the start.
  void reload(config::QueueConfig queue, config::ShapingConfig shaping);

  // Stops opening connections and handing out jobs; open connections finish their current
  // transaction. `done` runs (on the strand) once no connection is left.
  void stop(std::function<void()> done);

  // Messages in the scheduled queue and being worked on (for logs and tests).
  size_t scheduled() const { return scheduled_count_.load(); }

 private:
  struct InFlight;

  int64_t now_ms() const;
  void schedule_or_start(spool::MessageMeta meta);
  void start(spool::MessageMeta meta);
  void on_resolved(spool::MessageId id, const std::string& domain, std::vector<size_t> rcpts,
                   dns::ResolveResult result);
  // The pool a message is sent through: its own tag, else its tenant's, else "default".
  std::string pool_for(const spool::MessageMeta& meta) const;
  // The tenant a message is scheduled as: its tag when configured, else "" (all others).
  std::string tenant_key(const spool::MessageMeta& meta) const;
  void on_report(outbound::JobReport r);
  // A job the dispatcher handed back uncharged until `until_ms` (parked).
  void on_parked(const JobRef& ref, const outbound::Job& job, int64_t until_ms,
                 const std::string& why);
  // Where a result came from, for its log record.
  struct Where {
    std::string site, provider, source, source_ip, pool;
    std::string tls;  // the connection's TLS (outbound::JobReport::tls)
  };
  Where where(const JobRef* ref, const Lane* lane) const;
  void defer(InFlight& m, size_t index, int64_t until_ms);
  void record(InFlight& m, const outbound::RecipientResult& r, const std::string& remote_host,
              const std::string& remote_ip, const Where& at, std::string_view category = {},
              std::string_view rule = {}, bool charged = true);
  void settle(spool::MessageId id);
  // Writes the message's recipients less those delivered so far, while other jobs of it are
  // still out: a message to several sites, one of them slow or held, must not be sent again
  // after a crash to the recipients that already took it. (Refused ones stay until settle()
  // has their DSN: a crash before then retries them, never loses their bounce.)
  void persist_progress(const InFlight& m);
  std::function<void(const Status&)> spool_error_logger(spool::MessageId id, const char* what);
  // A spool write that must happen (a settled message's new state): `write(done)` issues it;
  // on failure (a full disk, an I/O error) it is issued again after a backoff from 1 s up to
  // kMaxSpoolRetryMs, for as long as the server runs. `then` runs on the strand once it worked.
  using SpoolWrite = std::function<void(std::function<void(const Status&)>)>;
  void write_until_done(SpoolWrite write, spool::MessageId id, const char* what,
                        std::function<void()> then, int64_t backoff_ms = 1000);
  void schedule(const std::string& tenant, spool::MessageId id, int64_t due);
  // Writes a message's new state (until it holds), then schedules it for meta.next_due_ms.
  void store_and_schedule(spool::MessageMeta meta);
  static constexpr int64_t kMaxSpoolRetryMs = 60'000;
  // Stores a DSN for the failed and expired recipients that asked for one; `stored(ok)` runs on
  // the strand once it is durable (or at once, true, when nobody asked).
  void send_dsn(const InFlight& m, const std::vector<size_t>& failed,
                const std::vector<size_t>& expired, std::function<void(bool)> stored);
  void arm_timer();
  void pull_due();
  // Applies an operator's rule to recipients of `m` for `domain` as it comes to work: true when
  // a rule took them (held or bounced).
  bool apply_admin_rule(InFlight& m, const std::string& domain, const std::vector<size_t>& rcpts,
                        const std::string& site = {});
  // The pool a message's recipients at `domain` (on `site`) go through: an operator's rebind,
  // else the message's.
  std::string pool_of(const InFlight& m, const std::string& domain, const std::string& site) const;
  // Moves the jobs a new rebind selects to its pool's ready queues; returns their recipients.
  uint64_t rebind_sweep(const AdminRule& rule);
  // /api/admin/limit/v1: run-time limit overrides (Dispatcher::add_override).
  void limit_request(const std::string& method, const std::string& body,
                     const std::function<void(int, std::string)>& done);
  // Applies a new rule to jobs waiting in ready queues (and, for a bounce, to the scheduled
  // queue); returns the recipients it took. Releases a cancelled suspension's messages.
  uint64_t sweep(const AdminRule& rule);
  uint64_t release(const AdminRule& rule);
  // A new message of a campaign with a cadence waits for its turn there (true), unless the
  // cadence released it already.
  bool held_by_cadence(const spool::MessageMeta& meta);
  void arm_cadence();
  void release_cadence();
  void maybe_stopped();

  boost::asio::io_context& ioc_;
  ManagerOptions options_;  // queue and shaping change on the strand (reload)
  spool::Spool& spool_;
  dns::Resolver& resolver_;
  observe::EventLog& log_;

  // Owned by strand_.
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  FairSchedule queue_;
  Cadence cadence_;
  AdminRules admin_;
  boost::asio::steady_timer cadence_timer_;
  int64_t cadence_at_ms_ = 0;  // when cadence_timer_ fires; 0: not armed
  std::unordered_set<spool::MessageId> released_;  // by the cadence, until they leave the spool
  std::unordered_map<spool::MessageId, std::unique_ptr<InFlight>> in_flight_;
  std::unique_ptr<ReplyReader> reader_;
  std::unique_ptr<Dispatcher> dispatcher_;
  bool stopping_ = false;
  std::function<void()> on_stopped_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<size_t> scheduled_count_{0};
};

}  // namespace sluice::queue
