#include "queue/dispatcher.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

#include "core/json.h"
#include "net/post.h"
#include "observe/event_log.h"
#include "observe/metrics.h"
#include "spool/spool.h"

namespace sluice::queue {
namespace asio = boost::asio;

namespace {

constexpr int64_t kTickMs = 1000;         // probing, decay and parking run this often
constexpr int64_t kParkAfterMs = 30'000;  // a queue nothing serves longer than this parks
constexpr int64_t kBacklogSeconds = 60;   // a paced queue keeps this much work in memory

}  // namespace

Dispatcher::Dispatcher(asio::io_context& ioc, Strand& strand, DispatcherOptions options,
                       spool::Spool& spool, observe::EventLog& log, outbound::ClientContext client,
                       Hooks hooks, std::function<int64_t()> clock)
    : ioc_(ioc),
      strand_(strand),
      options_(std::move(options)),
      spool_(spool),
      log_(log),
      hooks_(std::move(hooks)),
      now_ms_(std::move(clock)),
      tick_timer_(strand) {
  for (const auto& [name, t] : options_.egress.tenants) {
    if (t.priority) priority_tenants_.insert(name);
  }
  for (const auto& [name, src] : options_.egress.sources) {
    outbound::ClientContext c = client;
    c.delivery.source_ip = src.address;
    if (!src.ehlo.empty()) c.helo = src.ehlo;
    clients_.emplace(name, std::move(c));
  }
}

Dispatcher::~Dispatcher() = default;

const outbound::ClientContext& Dispatcher::client_for(const std::string& source) const {
  return clients_.at(source);
}

shaping::Warmup* Dispatcher::warmup(const std::string& source) {
  const auto& src = options_.egress.sources.at(source);
  if (src.warmup.empty()) return nullptr;
  auto& w = warmups_[source];
  if (!w) {
    const int64_t now = now_ms_();
    w = std::make_unique<shaping::Warmup>(options_.egress.warmups.at(src.warmup),
                                          src.warmup_start_ms ? src.warmup_start_ms : now);
    const std::string key = "warmup/" + source;
    if (auto st = spool_.read_state(key); st.ok()) {
      for (const auto& [k, v] : *st) {
        if (k == key) (void)w->restore(v, /*keep_start=*/src.warmup_start_ms != 0);
      }
    }
  }
  return w.get();
}

int64_t Dispatcher::warm_wait(Lane& lane, int64_t now) {
  shaping::Warmup* w = warmup(lane.source);
  return w ? w->wait(lane.site->dest.provider, now) : 0;
}

void Dispatcher::warm_count(Lane& lane, int64_t now) {
  shaping::Warmup* w = warmup(lane.source);
  if (!w) return;
  w->count(lane.site->dest.provider, now);
  // Not synced, like learned limits: a crash may forget the last few counts, a restart none.
  (void)spool_.put_state("warmup/" + lane.source, w->encode());
}

SiteState& Dispatcher::site_for(const dns::Destination& d, const std::string& domain) {
  auto& ptr = sites_[d.site];
  if (!ptr) {
    ptr = std::make_unique<SiteState>();
    ptr->name = d.site;
  } else if (options_.shaping.domains.count(domain)) {
    // A domain override applies to the site it lands on (under the source's own).
    const auto limits = options_.shaping.limits_for(d.provider, d.site, domain);
    for (auto& [name, lane] : ptr->lanes) {
      config::ShapingLimits l = limits;
      options_.egress.sources.at(name).limits.apply_to(l);
      lane->ctl->set_limits(l);
    }
  }
  SiteState& s = *ptr;
  s.dest = d;  // the newest answer wins (TTL expiry, changed MX)
  if (std::find(s.domains.begin(), s.domains.end(), domain) == s.domains.end() &&
      s.domains.size() < 20)
    s.domains.push_back(domain);
  return s;
}

std::unique_ptr<Lane> Dispatcher::make_lane(SiteState& site, const config::EgressSource& src,
                                            const std::string& domain) {
  auto lane = std::make_unique<Lane>();
  Lane& l = *lane;
  l.key = src.address + "|" + site.name;
  l.source = src.name;
  l.address = src.address;
  l.site = &site;
  const int64_t now = now_ms_();
  l.ctl = std::make_unique<shaping::Controller>(lane_limits(site, src, domain),
                                                options_.shaping.tuning, now);
  l.wake = std::make_unique<asio::steady_timer>(strand_);
  // What an earlier run (or this one, before the site was forgotten) learned about it.
  std::string key(kShapingStatePrefix);
  key += l.key;
  if (auto st = spool_.read_state(key); st.ok()) {
    for (const auto& [k, v] : *st) {
      if (k != key) continue;  // a longer key with this one as its prefix
      if (auto learned = shaping::Learned::decode(v)) l.ctl->restore(*learned, now);
    }
  }
  if (auto hold = source_holds_.find(src.name);
      hold != source_holds_.end() && hold->second.first > now)
    l.ctl->suspend_by_operator(hold->second.first, hold->second.second);
  lanes_[l.key] = &l;
  return lane;
}

uint64_t Dispatcher::add(SiteState& site, const std::string& pool_name, uint64_t message,
                         outbound::Job job) {
  auto pool = options_.egress.pools.find(pool_name);
  if (pool == options_.egress.pools.end()) pool = options_.egress.pools.find("default");
  auto& q = site.queues[pool->first];
  if (!q) {
    q = std::make_unique<ReadyQueue>();
    q->pool = pool->first;
    q->ready.prioritize(&priority_tenants_);
    const std::string& domain = site.domains.empty() ? std::string() : site.domains.back();
    for (const auto& [source, weight] : pool->second.sources) {
      auto& lane = site.lanes[source];
      if (!lane) lane = make_lane(site, options_.egress.sources.at(source), domain);
      q->lanes.emplace_back(lane.get(), weight);
    }
  }
  const uint64_t token = next_token_++;
  job.token = token;
  jobs_[token] = JobRef{message, site.name, q->pool, {}, 0,
                        static_cast<uint32_t>(job.recipients.size())};
  const auto meta = job.meta;
  q->ready.push_back(meta->tenant, std::move(job));
  return token;
}

void Dispatcher::open(SiteState& site, const std::string& pool) {
  auto it = site.queues.find(pool);
  if (it == site.queues.end()) it = site.queues.find("default");
  if (it == site.queues.end()) return;
  keep_share(site, *it->second);
  open_connections(site, *it->second);
}

void Dispatcher::reopen(SiteState& site) {
  // By pool name: opening may park, and parking may settle messages, never sites.
  std::vector<std::string> pools;
  for (const auto& [pool, q] : site.queues) pools.push_back(pool);
  for (const auto& pool : pools) {
    if (auto it = site.queues.find(pool); it != site.queues.end())
      open_connections(site, *it->second);
  }
}

void Dispatcher::requeue(uint64_t token, outbound::Job job) {
  auto ref = jobs_.find(token);
  if (ref == jobs_.end()) return;
  ref->second.lane.clear();
  SiteState* s = site(ref->second.site);
  if (!s) return;
  auto q = s->queues.find(ref->second.pool);
  if (q == s->queues.end()) return;
  job.token = token;
  // The same job, at the front: it was next in line.
  const auto meta = job.meta;
  q->second->ready.push_front(meta->tenant, std::move(job));
  open_connections(*s, *q->second);  // only what the lanes now allow: no reconnect storm
}

std::vector<std::pair<JobRef, outbound::Job>> Dispatcher::take_if(
    const std::function<bool(const outbound::Job&, const std::string& site)>& pred) {
  std::vector<std::pair<JobRef, outbound::Job>> out;
  for (auto& [name, site] : sites_) {
    for (auto& [pool, q] : site->queues) {
      const std::string& site_name = name;
      auto selected = [&](const outbound::Job& j) { return pred(j, site_name); };
      for (auto& job : q->ready.remove_if(selected)) {
        auto ref = jobs_.find(job.token);
        if (ref == jobs_.end()) continue;
        out.emplace_back(std::move(ref->second), std::move(job));
        jobs_.erase(ref);
      }
    }
  }
  return out;
}

JobRef* Dispatcher::job(uint64_t token) {
  auto it = jobs_.find(token);
  return it == jobs_.end() ? nullptr : &it->second;
}

void Dispatcher::release_body(uint64_t token) {
  auto it = jobs_.find(token);
  if (it == jobs_.end() || it->second.body_bytes == 0) return;
  body_bytes_ -= it->second.body_bytes;
  it->second.body_bytes = 0;
  if (!slot_waiters_.empty()) asio::post(strand_, [this] { grant_slots(); });
}

Lane* Dispatcher::lane(const std::string& key) {
  auto it = lanes_.find(key);
  return it == lanes_.end() ? nullptr : it->second;
}

SiteState* Dispatcher::site(const std::string& name) {
  auto it = sites_.find(name);
  return it == sites_.end() ? nullptr : it->second.get();
}

std::vector<const JobRef*> Dispatcher::jobs_of(uint64_t message) const {
  std::vector<const JobRef*> out;
  for (const auto& [token, ref] : jobs_) {
    if (ref.message == message) out.push_back(&ref);
  }
  return out;
}

bool Dispatcher::other_lane_open(const JobRef& ref, const Lane& except) {
  SiteState* s = site(ref.site);
  if (!s) return false;
  auto q = s->queues.find(ref.pool);
  if (q == s->queues.end()) return false;
  const int64_t now = now_ms_();
  for (const auto& [lane, weight] : q->second->lanes) {
    if (lane != &except && !lane->ctl->suspended(now) && !lane->ctl->unavailable()) return true;
  }
  return false;
}

void Dispatcher::open_connections(SiteState& site, ReadyQueue& q) {
  const int64_t now = now_ms_();
  std::vector<Lane*> paced;  // lanes whose message rate said "not yet"
  while (!stopping_ && !q.ready.empty()) {
    const uint32_t open = q.connections();
    if (open != 0 && q.ready.size() <= open) return;
    // The lane to open from: among those whose key allows a connection now, the one with the
    // fewest connections for its weight.
    Lane* best = nullptr;
    double best_load = 0;
    int64_t reopen = 0;  // the earliest time a closed lane opens again
    bool all_suspended = true, all_warming = true;
    for (auto& [lane, weight] : q.lanes) {
      all_suspended = all_suspended && lane->ctl->suspended(now);
      if (std::find(paced.begin(), paced.end(), lane) != paced.end()) continue;
      // A warming source at its cap for the site's provider waits for the next hour or day;
      // the pool's other sources carry its traffic meanwhile.
      if (const int64_t wait = warm_wait(*lane, now)) {
        wake_at(*lane, now + wait);
        reopen = reopen ? std::min(reopen, now + wait) : now + wait;
        continue;
      }
      all_warming = false;
      if (!lane->ctl->may_open(now, lane->connections)) {
        if (const int64_t at = lane->ctl->reopen_at_ms(now)) {
          wake_at(*lane, at);
          reopen = reopen ? std::min(reopen, at) : at;
        }
        continue;
      }
      const double load = (lane->connections + 1.0) / weight;
      if (!best || load < best_load) {
        best = lane;
        best_load = load;
      }
    }
    if (!best) {
      if (!paced.empty()) {
        // Every lane that may open is paced by its message rate: the queue keeps about a
        // minute of their work in memory; the rest waits in the scheduled queue (uncharged),
        // so that one slow receiver cannot take every in-flight slot.
        double rate = 0;
        for (Lane* l : paced) rate += l->ctl->message_rate();
        const auto keep = static_cast<size_t>(std::max(100.0, rate * kBacklogSeconds));
        if (q.ready.size() > keep)
          park(site, q, now + kBacklogSeconds * 1000, "paced by its message rate", keep);
      } else if (open == 0 && reopen && reopen - now > kParkAfterMs) {
        // No source of the pool can send to the site for long, nothing is open: the messages
        // wait in the scheduled queue (uncharged) instead of in memory.
        park(site, q, reopen,
             all_warming    ? "at its sources' warm-up caps"
             : all_suspended ? "suspended"
                             : "held after refused connections");
      }
      return;
    }
    if (const int64_t wait = best->ctl->take_message(now)) {
      wake_at(*best, now + wait);
      paced.push_back(best);
      continue;
    }
    // The global cap on outbound connections: a site that would go over it waits its turn,
    // and connections that close go to the waiting queues in turn. No site takes more than
    // three quarters of the cap, so a slow or hung one cannot starve the rest.
    const uint32_t cap = options_.delivery.max_connections;
    if (cap > 1 && site.connections() >= std::max<uint32_t>(1, cap * 3 / 4)) return;
    if (connections_ >= cap) return wait_slot(site, q);
    auto job = take_job(site, q, *best);
    if (!job) break;
    job->next_mx_on_refusal = best->established == 0;
    best->ctl->opened(now);
    ++best->connections;
    ++connections_;
    asio::co_spawn(asio::make_strand(ioc_),
                   outbound::run_connection(client_for(best->source), site.dest, std::move(*job),
                                            best->key),
                   [](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       std::fprintf(stderr, "sluice: delivery connection ended by exception: %s\n",
                                    ex.what());
                     }
                   });
  }
}

void Dispatcher::wait_slot(SiteState& site, ReadyQueue& q) {
  if (q.waiting_slot) return;
  q.waiting_slot = true;
  slot_waiters_.emplace_back(site.name, q.pool);
}

void Dispatcher::grant_slots() {
  // Bounded: a queue that cannot take a slot now goes to the back and is not asked again here.
  for (size_t n = slot_waiters_.size();
       n > 0 && connections_ < options_.delivery.max_connections && !slot_waiters_.empty(); --n) {
    const auto [site_name, pool] = std::move(slot_waiters_.front());
    slot_waiters_.pop_front();
    SiteState* s = site(site_name);
    if (!s) continue;
    auto q = s->queues.find(pool);
    if (q == s->queues.end()) continue;
    q->second->waiting_slot = false;
    open_connections(*s, *q->second);  // back of the line if it wants more than the cap allows
  }
}

void Dispatcher::keep_share(SiteState& site, ReadyQueue& q) {
  const size_t share = std::max<size_t>(1, options_.max_in_flight / 4);
  if (q.ready.size() > share) {
    park(site, q, now_ms_() + kBacklogSeconds * 1000, "over its share of the messages in flight",
         share);
  }
}

void Dispatcher::wake_at(Lane& lane, int64_t at_ms) {
  if (stopping_ || (lane.wake_at_ms && lane.wake_at_ms <= at_ms)) return;
  lane.wake_at_ms = at_ms;
  lane.wake->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, at_ms - now_ms_())));
  // By key: the lane may have been forgotten (tick) by the time the wait completes.
  lane.wake->async_wait([this, key = lane.key](const boost::system::error_code& ec) {
    if (ec) return;
    Lane* l = this->lane(key);
    if (!l) return;
    l->wake_at_ms = 0;
    reopen(*l->site);
  });
}

void Dispatcher::park(SiteState& site, ReadyQueue& q, int64_t until_ms, const std::string& why,
                      size_t keep) {
  std::string last_signal;
  for (const auto& [lane, weight] : q.lanes) {
    if (!lane->last_signal.empty()) last_signal = lane->last_signal;
  }
  const std::string reason =
      site.name + " is " + why + " until " + utc_timestamp(until_ms) + ": " + last_signal;
  while (q.ready.size() > keep) {
    outbound::Job job = q.ready.pop_back();  // the last in the longest line go first
    auto ref = jobs_.find(job.token);
    if (ref == jobs_.end()) continue;
    const JobRef r = std::move(ref->second);
    jobs_.erase(ref);
    hooks_.parked(r, job, until_ms, reason);
  }
}

std::optional<outbound::Job> Dispatcher::take_job(SiteState& site, ReadyQueue& q, Lane& lane) {
  while (!q.ready.empty()) {
    // Bodies held by connections stay within [delivery] max_bytes_in_flight (one message at a
    // time may exceed it alone): over it, the queue waits its turn like under the connection cap.
    const uint64_t size = q.ready.front().meta->size;
    if (body_bytes_ > 0 && body_bytes_ + size > options_.delivery.max_bytes_in_flight) {
      wait_slot(site, q);
      return std::nullopt;
    }
    outbound::Job job = q.ready.pop_front();
    auto body = spool_.read_body(job.meta->id);
    auto ref = jobs_.find(job.token);
    if (body) {
      job.body = std::move(*body);
      warm_count(lane, now_ms_());
      if (ref != jobs_.end()) {
        ref->second.lane = lane.key;
        ref->second.body_bytes = job.body.size();
        body_bytes_ += job.body.size();
      }
      return job;
    }
    // The body is unreadable (disk error): the job fails transiently and is retried later.
    if (ref != jobs_.end()) ref->second.lane = lane.key;
    outbound::JobReport r{job.token, {}, "", "", 0, ""};
    for (size_t i : job.recipients) {
      r.results.push_back({i, outbound::Outcome::kTransient, outbound::Stage::kConnect,
                           smtp::Reply::make(451, "4.3.0", body.error().message)});
    }
    asio::post(strand_, [this, r = std::move(r)]() mutable { hooks_.failed(std::move(r)); });
  }
  return std::nullopt;
}

Dispatcher::Take Dispatcher::take_next(const std::string& key, uint32_t done) {
  Lane* l = lane(key);
  if (stopping_ || !l) return {};
  const int64_t now = now_ms_();
  if (done >= l->ctl->max_deliveries() || l->ctl->suspended(now)) return {};
  // The pools this lane serves, in turn.
  SiteState& s = *l->site;
  std::vector<ReadyQueue*> serving;
  for (auto& [pool, q] : s.queues) {
    if (!q->ready.empty() && q->serves(*l)) serving.push_back(q.get());
  }
  if (serving.empty()) return {};
  const int64_t idle = l->ctl->limits().idle_timeout.count();
  if (const int64_t wait = warm_wait(*l, now)) return Take{std::nullopt, wait, idle};
  if (const int64_t wait = l->ctl->take_message(now)) return Take{std::nullopt, wait, idle};
  ReadyQueue& q = *serving[l->next_queue++ % serving.size()];
  return Take{take_job(s, q, *l), 0, idle};
}

asio::awaitable<std::optional<outbound::Job>> Dispatcher::next_job(const std::string& lane,
                                                                   uint32_t done) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer pause(ex);
  int64_t waited = 0;
  for (;;) {
    // Named, not a temporary inside the co_await: GCC 12 destroys such temporaries twice.
    auto take = [this, lane, done] { return take_next(lane, done); };
    Take t = co_await net::run_on(strand_, std::move(take), asio::use_awaitable);
    if (t.job || t.wait_ms <= 0 || waited + t.wait_ms > t.idle_ms) co_return std::move(t.job);
    // Message pacing: this connection waits for the key's next slot instead of closing.
    pause.expires_after(std::chrono::milliseconds(t.wait_ms));
    co_await pause.async_wait(asio::use_awaitable);
    waited += t.wait_ms;
  }
}

void Dispatcher::connection_established(const std::string& key) {
  Lane* l = lane(key);
  if (!l) return;
  ++l->established;
  if (auto c = l->ctl->on_connected(now_ms_(), l->established)) {
    changed(*l, *c);
  }
  reopen(*l->site);  // slow start may allow another
}

void Dispatcher::connection_closed(const std::string& key, bool established) {
  --connections_;
  grant_slots();  // queues waiting for a connection first, in turn, then this one's
  Lane* l = lane(key);
  if (!l) return;
  --l->connections;
  if (established && l->established) --l->established;
  reopen(*l->site);  // jobs may have arrived while it was busy, or it broke
}

void Dispatcher::tick() {
  if (stopping_) return;
  const int64_t now = now_ms_();
  expire_overrides(now);
  std::vector<std::string> forget;
  for (auto& [name, ptr] : sites_) {
    SiteState& s = *ptr;
    bool idle = true;
    for (auto& [source, lane] : s.lanes) {
      Lane& l = *lane;
      bool waiting = false;
      for (const auto& [pool, q] : s.queues) waiting = waiting || (!q->ready.empty() && q->serves(l));
      const bool full = l.connections >= l.ctl->connection_limit();
      if (auto c = l.ctl->tick(now, waiting, full)) changed(l, *c);
      idle = idle && l.connections == 0 && l.wake_at_ms == 0 && !l.ctl->suspended(now);
    }
    for (const auto& [pool, q] : s.queues) idle = idle && q->ready.empty() && !q->waiting_slot;
    // A site with nothing open, nothing waiting and no timer for a while leaves memory; its
    // lanes' learned state is in the spool database and comes back when the site is seen again.
    if (!idle)
      s.idle_since_ms = 0;
    else if (s.idle_since_ms == 0)
      s.idle_since_ms = now;
    else if (now - s.idle_since_ms > options_.shaping.tuning.forget_after.count())
      forget.push_back(name);
  }
  for (const auto& name : forget) {
    auto it = sites_.find(name);
    for (auto& [source, lane] : it->second->lanes) {
      if (!lane->ctl->in_slow_start()) save_learned(*lane);
      lanes_.erase(lane->key);
    }
    sites_.erase(it);
  }
  // Opening connections may settle messages (parking), so it runs over names, not iterators.
  std::vector<std::string> waiting;
  for (const auto& [name, ptr] : sites_) waiting.push_back(name);
  for (const auto& name : waiting) {
    if (SiteState* s = site(name)) reopen(*s);
  }
  tick_timer_.expires_after(std::chrono::milliseconds(kTickMs));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void Dispatcher::stop() {
  stopping_ = true;
  tick_timer_.cancel();
  for (auto& [key, lane] : lanes_) lane->wake->cancel();
}

void Dispatcher::changed(Lane& lane, const shaping::Change& c, const std::string& reply,
                         std::string_view category, std::string_view rule) {
  const bool suspension = c.what == "suspension";
  JsonLine line;
  line.timestamp()
      .str("event", suspension ? "Suspension" : "ThrottleChange")
      .str("source", lane.source)
      .str("source_ip", lane.address)
      .str("site", lane.site->name)
      .str("provider", lane.site->dest.provider);
  if (suspension) {
    line.str("duration", c.to).str("until", utc_timestamp(lane.ctl->suspended_until_ms()));
  } else {
    line.str("limit", c.what).str("from", c.from).str("to", c.to);
  }
  line.str("reason", c.why)
      .str("category", category)
      .str("rule", rule)
      .str("reply", reply)
      .unum("connections", lane.connections);
  log_.write(line.finish());
  if (!lane.ctl->in_slow_start() || c.what != "connection_limit") save_learned(lane);
}

void Dispatcher::save_learned(const Lane& lane) {
  // Not synced: losing the last change in a crash costs a little relearning, never a message.
  std::string key(kShapingStatePrefix);
  key += lane.key;
  (void)spool_.put_state(key, lane.ctl->learned().encode());
}

std::string Dispatcher::lanes_json() const {
  const int64_t now = now_ms_();
  std::string out = "[";
  for (const auto& [name, ptr] : sites_) {
    const SiteState& s = *ptr;
    std::string domains = "[";
    for (const auto& d : s.domains) {
      if (domains.size() > 1) domains.push_back(',');
      append_json_string(domains, d);
    }
    domains.push_back(']');
    for (const auto& [source, lane] : s.lanes) {
      const Lane& l = *lane;
      const shaping::Controller& c = *l.ctl;
      const config::ShapingLimits& lim = c.limits();
      const shaping::Learned& learned = c.learned();
      size_t ready = 0;
      for (const auto& [pool, q] : s.queues) {
        if (q->serves(l)) ready += q->ready.size();
      }
      if (out.size() > 1) out.push_back(',');
      JsonLine j;
      j.str("key", l.key)
          .str("source", l.source)
          .str("source_ip", l.address)
          .str("site", s.name)
          .str("provider", s.dest.provider)
          .raw("domains", domains)
          .boolean("adaptive", lim.adaptive)
          .unum("configured_connection_limit", lim.connection_limit)
          .unum("connection_limit", c.connection_limit())
          .boolean("slow_start", c.in_slow_start())
          .unum("learned_connection_limit", learned.connection_limit)
          .unum("configured_max_deliveries_per_connection", lim.max_deliveries_per_connection)
          .unum("max_deliveries_per_connection", c.max_deliveries())
          .num("configured_max_message_rate_per_hour",
               lim.max_message_rate.limited()
                   ? static_cast<int64_t>(lim.max_message_rate.per_second() * 3600)
                   : 0)
          .num("message_rate_per_hour", static_cast<int64_t>(c.message_rate() * 3600))
          .num("probe_interval_ms", learned.probe_interval_ms
                                        ? learned.probe_interval_ms
                                        : options_.shaping.tuning.probe_interval.count())
          .unum("open_connections", l.connections)
          .unum("working_connections", l.established)
          .unum("ready", ready)
          .unum("delivered", l.delivered)
          .unum("throttled", l.throttled)
          .unum("refused_connections", l.refused_connections)
          .boolean("held", now < c.hold_until_ms())
          .boolean("suspended", c.suspended(now))
          .str("suspended_until", c.suspended(now) ? utc_timestamp(c.suspended_until_ms()) : "")
          .str("suspend_reason", c.suspended(now) ? learned.suspend_reason : "")
          .str("last_signal", l.last_signal)
          .str("last_signal_at", l.last_signal_ms ? utc_timestamp(l.last_signal_ms) : "")
          .str("last_stage", l.last_stage)
          .str("last_category", l.last_category)
          .str("last_rule", l.last_rule);
      std::string obj = j.finish();
      obj.pop_back();  // the '\n'
      out += obj;
    }
  }
  out.push_back(']');
  return out;
}

void Dispatcher::gauges(observe::Gauges& g) const {
  const int64_t now = now_ms_();
  struct Family {
    const char* name;
    const char* help;
    double (*value)(const Lane&, int64_t);
  };
  static const Family kLaneFamilies[] = {
      {"sluice_connections_open", "Outbound connections open or being set up, per shaping key.",
       [](const Lane& l, int64_t) { return static_cast<double>(l.connections); }},
      {"sluice_connection_limit", "Connections a shaping key may have open now (learned or slow start).",
       [](const Lane& l, int64_t) { return static_cast<double>(l.ctl->connection_limit()); }},
      {"sluice_connection_limit_configured", "The configured maximum of a shaping key's connections.",
       [](const Lane& l, int64_t) { return static_cast<double>(l.ctl->limits().connection_limit); }},
      {"sluice_connection_limit_learned", "The connection limit a shaping key learned (0: none yet).",
       [](const Lane& l, int64_t) { return static_cast<double>(l.ctl->learned().connection_limit); }},
      {"sluice_message_rate_limit", "A shaping key's message rate in force (messages per second; 0: none).",
       [](const Lane& l, int64_t) { return l.ctl->message_rate(); }},
      {"sluice_suspended", "1 while a shaping key is suspended (a reputation signal).",
       [](const Lane& l, int64_t now) { return l.ctl->suspended(now) ? 1.0 : 0.0; }},
  };
  for (const auto& f : kLaneFamilies) {
    g.family(f.name, f.help);
    for (const auto& [name, site] : sites_) {
      for (const auto& [source, lane] : site->lanes) {
        g.sample(f.name,
                 {{"source", source}, {"site", name}, {"provider", site->dest.provider}},
                 f.value(*lane, now));
      }
    }
  }
  g.family("sluice_ready_jobs", "Jobs waiting for a connection, per pool and site.");
  for (const auto& [name, site] : sites_) {
    for (const auto& [pool, q] : site->queues) {
      g.sample("sluice_ready_jobs", {{"pool", pool}, {"site", name}, {"provider", site->dest.provider}},
               static_cast<double>(q->ready.size()));
    }
  }
}

std::string Dispatcher::sources_json() {
  const int64_t now = now_ms_();
  std::string out = "[";
  for (const auto& [name, src] : options_.egress.sources) {
    std::string pools = "[";
    for (const auto& [pool, p] : options_.egress.pools) {
      for (const auto& [member, weight] : p.sources) {
        if (member != name) continue;
        if (pools.size() > 1) pools.push_back(',');
        append_json_string(pools, pool);
      }
    }
    pools.push_back(']');
    JsonLine j;
    j.str("source", name).str("address", src.address).str("ehlo", client_for(name).helo);
    j.raw("pools", pools).str("warmup", src.warmup);
    if (shaping::Warmup* w = warmup(name)) {
      // Today's count and caps for every provider it has sent to, and for the rest ("").
      std::map<std::string, bool> providers{{"", true}};
      for (const auto& [p, c] : w->counts()) providers[p] = true;
      std::string caps = "[";
      for (const auto& [p, _] : providers) {
        const auto c = w->counted(p, now);
        const auto cap = w->caps(p, now);
        if (caps.size() > 1) caps.push_back(',');
        JsonLine e;
        e.str("provider", p)
            .unum("today", c.today)
            .unum("daily_cap", cap.daily)
            .unum("this_hour", c.this_hour)
            .unum("hourly_cap", cap.hourly);
        std::string obj = e.finish();
        obj.pop_back();
        caps += obj;
      }
      caps.push_back(']');
      j.unum("warmup_day", w->day(now))
          .str("warmup_start", utc_timestamp(w->start_ms()).substr(0, 10))
          .boolean("warmed_up", w->warmed(now))
          .raw("warmup_counts", caps);
    }
    std::string lanes = "[";
    for (const auto& [site_name, site] : sites_) {
      auto it = site->lanes.find(name);
      if (it == site->lanes.end()) continue;
      const Lane& l = *it->second;
      if (lanes.size() > 1) lanes.push_back(',');
      JsonLine e;
      e.str("site", site_name)
          .str("provider", site->dest.provider)
          .unum("connection_limit", l.ctl->connection_limit())
          .unum("learned_connection_limit", l.ctl->learned().connection_limit)
          .num("message_rate_per_hour", static_cast<int64_t>(l.ctl->message_rate() * 3600))
          .unum("open_connections", l.connections)
          .boolean("suspended", l.ctl->suspended(now))
          .unum("delivered", l.delivered);
      std::string obj = e.finish();
      obj.pop_back();
      lanes += obj;
    }
    lanes.push_back(']');
    j.raw("lanes", lanes);
    std::string obj = j.finish();
    obj.pop_back();
    if (out.size() > 1) out.push_back(',');
    out += obj;
  }
  out.push_back(']');
  return out;
}

std::string Dispatcher::domain_json(const std::string& domain) const {
  const int64_t now = now_ms_();
  const SiteState* found = nullptr;
  for (const auto& [name, ptr] : sites_) {
    if (std::find(ptr->domains.begin(), ptr->domains.end(), domain) != ptr->domains.end()) {
      found = ptr.get();
      break;
    }
  }
  JsonLine e;
  e.str("domain", domain);
  if (!found) {
    e.str("site", "");  // not being delivered to now
  } else {
    size_t ready = 0;
    for (const auto& [pool, q] : found->queues) ready += q->ready.size();
    // The site as a whole (summed over its sources; suspended when every source is), then each
    // source's lane.
    uint32_t limit = 0, open = 0;
    bool held = false, suspended = !found->lanes.empty();
    int64_t until = 0;
    const Lane* latest = nullptr;  // the lane with the newest signal
    std::string lanes = "[";
    for (const auto& [source, lane] : found->lanes) {
      const shaping::Controller& c = *lane->ctl;
      limit += c.connection_limit();
      open += lane->connections;
      held = held || now < c.hold_until_ms();
      suspended = suspended && c.suspended(now);
      until = until ? std::min(until, c.suspended_until_ms()) : c.suspended_until_ms();
      if (!latest || lane->last_signal_ms > latest->last_signal_ms) latest = lane.get();
      if (lanes.size() > 1) lanes.push_back(',');
      JsonLine l;
      l.str("source", lane->source)
          .str("source_ip", lane->address)
          .unum("connection_limit", c.connection_limit())
          .unum("open_connections", lane->connections)
          .boolean("held", now < c.hold_until_ms())
          .boolean("suspended", c.suspended(now))
          .str("suspended_until", c.suspended(now) ? utc_timestamp(c.suspended_until_ms()) : "")
          .str("last_signal", lane->last_signal)
          .str("last_category", lane->last_category);
      std::string obj = l.finish();
      obj.pop_back();
      lanes += obj;
    }
    lanes.push_back(']');
    e.str("site", found->name)
        .str("provider", found->dest.provider)
        .unum("connection_limit", limit)
        .unum("open_connections", open)
        .unum("ready", ready)
        .boolean("held", held)
        .boolean("suspended", suspended)
        .str("suspended_until", suspended ? utc_timestamp(until) : "")
        .str("last_signal", latest ? latest->last_signal : "")
        .str("last_category", latest ? latest->last_category : "")
        .raw("sources", lanes);
  }
  std::string obj = e.finish();
  obj.pop_back();
  return obj;
}

}  // namespace sluice::queue
