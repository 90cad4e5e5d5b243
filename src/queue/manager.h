// The queue manager (Postfix's qmgr): takes every accepted or recovered message, keeps deferred
// ones in the scheduled queue, resolves each recipient domain to a site, puts one job per
// (message, domain, transaction) in that site's ready queue, opens connections to the site as
// its shaping key allows (src/shaping: connection limit, hold, suspension, connection and
// message rate, deliveries per connection) and feeds them jobs, classifies every reply
// (src/classify) and acts on the verdict: throttle signals adapt the key and put the message
// back in the ready queue (or park it until a suspension ends) without charging an attempt;
// greylisting delays only that message. Each message is settled when all its jobs have
// reported: delivered recipients leave the spool, permanent failures and expired recipients
// get a DSN (never for the null sender), the rest is retried with exponential backoff. A fresh
// message that is due goes straight to work (no timer tick).
//
// Files: manager.cpp (intake, scheduling, settling), manager_sites.cpp (sites, connections,
// replies and shaping).
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
#include <vector>

#include "classify/classifier.h"
#include "config/config.h"
#include "dns/resolver.h"
#include "outbound/client.h"
#include "queue/intake.h"
#include "queue/schedule.h"
#include "shaping/controller.h"

namespace sluice::spool {
class Spool;
}
namespace sluice::observe {
class EventLog;
}

namespace sluice::queue {

struct ManagerOptions {
  config::QueueConfig queue;
  config::DeliveryConfig delivery;
  config::ShapingConfig shaping;
  const classify::Classifier* classifier = nullptr;  // null: the code-based fallback
  std::string hostname;                              // DSN Reporting-MTA and From
  size_t max_in_flight = 10'000;
};

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
  boost::asio::awaitable<std::optional<outbound::Job>> next_job(const std::string& site,
                                                                uint32_t done) override;
  void report(outbound::JobReport report) override;
  void connection_established(const std::string& site) override;
  void connection_closed(const std::string& site, bool established) override;

  // Every shaping key's configured and learned limits, open connections, last signal and
  // suspension, as a JSON array (the admin API); `done` runs on the manager's strand.
  void sites_json(std::function<void(std::string)> done);
  // Where the queue has one (spooled) message and what holds it, as a JSON object: in flight
  // (its jobs and their sites) or scheduled, and for each recipient domain the site it lands on
  // with that site's state (limit, suspension, last signal). `done` runs on the strand.
  void message_json(const spool::MessageMeta& meta, std::function<void(std::string)> done);

  // Stops opening connections and handing out jobs; open connections finish their current
  // transaction. `done` runs (on the strand) once no connection is left.
  void stop(std::function<void()> done);

  // Messages in the scheduled queue and being worked on (for logs and tests).
  size_t scheduled() const { return scheduled_count_.load(); }

 private:
  struct InFlight;
  struct Site;

  int64_t now_ms() const;
  void schedule_or_start(spool::MessageMeta meta);
  void start(spool::MessageMeta meta);
  void on_resolved(spool::MessageId id, const std::string& domain, std::vector<size_t> rcpts,
                   dns::ResolveResult result);
  Site& site_for(const dns::Destination& d, const std::string& domain);
  void open_connections(Site& site);
  void wake_at(Site& site, int64_t at_ms);
  void tick();
  // Moves the site's ready jobs beyond the first `keep` to the scheduled queue until `until_ms`,
  // uncharged.
  void park(Site& site, int64_t until_ms, const std::string& why, size_t keep = 0);
  struct Take {
    std::optional<outbound::Job> job;
    int64_t wait_ms = 0;  // message pacing: ask again after this long
    int64_t idle_ms = 0;  // the key's idle_timeout: how long a connection may wait
  };
  Take take_next(const std::string& site, uint32_t done);
  std::optional<outbound::Job> take_job(Site& site);
  void on_report(outbound::JobReport r);
  void apply_signal(Site& site, const classify::Verdict& v, const outbound::RecipientResult& r,
                    uint32_t transactions_before);
  // Whether a reply found the site unavailable (a dead destination), and if this reply is the
  // one that found it (the outage's one charged attempt).
  enum class Outage : uint8_t { kNone, kOngoing, kBegins };
  // Reads what the receiver does where its words say nothing: a refusal before the connection
  // worked becomes a connection-limit verdict (in `v`) while others to the site work, or marks
  // the site unavailable (dead destination) when nothing works; refusals of messages that come
  // in numbers become a rate-limit verdict.
  Outage read_behaviour(Site& site, const outbound::RecipientResult& res,
                        uint32_t transactions_before, uint32_t others_working,
                        classify::Verdict& v);
  void log_change(const Site& site, const shaping::Change& c, const std::string& reply = {},
                  std::string_view category = {}, std::string_view rule = {});
  void save_learned(const Site& site);
  void defer(InFlight& m, size_t index, int64_t until_ms);
  void record(InFlight& m, const outbound::RecipientResult& r, const std::string& remote_host,
              const std::string& remote_ip, const std::string& site, const std::string& provider,
              std::string_view category = {}, std::string_view rule = {}, bool charged = true);
  void settle(spool::MessageId id);
  // Opens connections for sites that waited under the global cap, in turn, while it allows.
  void grant_slots();
  // Parks what a site holds in memory beyond its share (a quarter) of the messages in flight.
  void keep_share(Site& site);
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
  void schedule(spool::MessageId id, int64_t due);
  // Writes a message's new state (until it holds), then schedules it for meta.next_due_ms.
  void store_and_schedule(spool::MessageMeta meta);
  static constexpr int64_t kMaxSpoolRetryMs = 60'000;
  // Stores a DSN for the failed and expired recipients that asked for one; `stored(ok)` runs on
  // the strand once it is durable (or at once, true, when nobody asked).
  void send_dsn(const InFlight& m, const std::vector<size_t>& failed,
                const std::vector<size_t>& expired, std::function<void(bool)> stored);
  void arm_timer();
  void pull_due();
  void maybe_stopped();

  boost::asio::io_context& ioc_;
  const ManagerOptions options_;
  spool::Spool& spool_;
  dns::Resolver& resolver_;
  observe::EventLog& log_;
  const outbound::ClientContext client_;

  // Owned by strand_.
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  ScheduledQueue queue_;
  std::unordered_map<spool::MessageId, std::unique_ptr<InFlight>> in_flight_;
  std::unordered_map<std::string, std::unique_ptr<Site>> sites_;
  boost::asio::steady_timer tick_timer_;
  struct JobRef {
    spool::MessageId id;
    std::string site;
    uint64_t body_bytes = 0;  // held by a connection since take_job(), until its report
  };
  std::unordered_map<uint64_t, JobRef> jobs_;  // job token -> message and site
  uint64_t next_token_ = 1;
  size_t connections_ = 0;
  uint64_t body_bytes_ = 0;  // message bodies held by connections (JobRef::body_bytes summed)
  std::deque<std::string> slot_waiters_;  // sites waiting under the global connection cap
  bool stopping_ = false;
  std::function<void()> on_stopped_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<size_t> scheduled_count_{0};
};

}  // namespace sluice::queue
