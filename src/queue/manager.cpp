#include "queue/manager.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <map>

#include "core/json.h"
#include "core/text.h"
#include "observe/event_log.h"
#include "observe/metrics.h"
#include "queue/dispatcher.h"
#include "queue/in_flight.h"
#include "queue/reading.h"
#include "spool/spool.h"

namespace sluice::queue {
namespace asio = boost::asio;
using classify::Action;
using outbound::Outcome;
using outbound::RecipientResult;

namespace {
constexpr uint32_t kMaxRequeues = 10;  // uncharged returns to the ready queue per round
}  // namespace

Manager::Manager(asio::io_context& ioc, ManagerOptions options, spool::Spool& spool,
                 dns::Resolver& resolver, observe::EventLog& log, outbound::ClientContext client)
    : ioc_(ioc),
      options_(std::move(options)),
      spool_(spool),
      resolver_(resolver),
      log_(log),
      strand_(asio::make_strand(ioc)),
      timer_(strand_),
      // With tenants configured, one tenant holds at most three quarters of the messages in
      // flight (FairSchedule).
      queue_(options_.egress.tenants.empty()
                 ? options_.max_in_flight
                 : std::max<size_t>(1, options_.max_in_flight * 3 / 4),
             [this] {
               std::set<std::string> priority;
               for (const auto& [name, t] : options_.egress.tenants) {
                 if (t.priority) priority.insert(name);
               }
               return priority;
             }()),
      cadence_(options_.egress.campaigns),
      cadence_timer_(strand_),
      reader_(std::make_unique<ReplyReader>(options_.classifier)) {
  client.source = this;
  Dispatcher::Hooks hooks;
  hooks.parked = [this](const JobRef& ref, const outbound::Job& job, int64_t until,
                        const std::string& why) { on_parked(ref, job, until, why); };
  hooks.failed = [this](outbound::JobReport r) { on_report(std::move(r)); };
  dispatcher_ = std::make_unique<Dispatcher>(
      ioc, strand_,
      DispatcherOptions{options_.delivery, options_.shaping, options_.egress,
                        options_.max_in_flight},
      spool, log, std::move(client), std::move(hooks), [this] { return now_ms(); });
}

Manager::~Manager() = default;

int64_t Manager::now_ms() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Manager::accept(const spool::MessageMeta& meta) {
  asio::post(strand_, [this, meta] { schedule_or_start(meta); });
}

void Manager::recovered(spool::MessageId id, int64_t due_ms) {
  queue_.push("", due_ms, id);  // its tenant is known once it is read back
  scheduled_count_ = queue_.size();
}

void Manager::begin() {
  asio::post(strand_, [this] {
    pull_due();
    dispatcher_->tick();
  });
}

void Manager::schedule_or_start(spool::MessageMeta meta) {
  if (stopping_) return;  // it stays in the spool; recovery brings it back
  if (held_by_cadence(meta)) return;
  const std::string tenant = tenant_key(meta);
  if (!options_.queue.hold && meta.next_due_ms <= now_ms() &&
      in_flight_.size() < options_.max_in_flight && queue_.may_start(tenant) &&
      !in_flight_.count(meta.id)) {
    start(std::move(meta));
    return;
  }
  schedule(tenant, meta.id, meta.next_due_ms);
}

void Manager::start(spool::MessageMeta meta) {
  const spool::MessageId id = meta.id;
  auto m = std::make_unique<InFlight>();
  m->results.resize(meta.recipients.size());
  m->remote.resize(meta.recipients.size());
  m->defer_until.resize(meta.recipients.size());
  // Recipients by domain: one resolution, then jobs, per domain.
  std::map<std::string, std::vector<size_t>> by_domain;
  for (size_t i = 0; i < meta.recipients.size(); ++i) {
    const std::string& addr = meta.recipients[i].address;
    const size_t at = addr.rfind('@');
    if (at == std::string::npos) {
      m->results[i] = RecipientResult{i, Outcome::kPermanent, outbound::Stage::kDns,
                                      smtp::Reply::make(550, "5.1.3", "no domain in " + addr)};
      continue;
    }
    by_domain[to_lower(addr.substr(at + 1))].push_back(i);
  }
  m->outstanding = by_domain.size();
  m->pool = pool_for(meta);
  m->tenant = tenant_key(meta);
  queue_.started(m->tenant);
  m->meta = std::move(meta);
  InFlight& ref = *m;
  in_flight_[id] = std::move(m);
  for (size_t i = 0; i < ref.results.size(); ++i) {
    if (ref.results[i]) record(ref, *ref.results[i], "", "", Where{});
  }
  if (by_domain.empty()) return settle(id);
  for (auto& [domain, rcpts] : by_domain) {
    if (apply_admin_rule(ref, domain, rcpts)) {
      if (--ref.outstanding == 0) return settle(id);
      continue;
    }
    std::string literal;  // [192.0.2.1]: an address literal is its own destination
    if (domain.size() > 2 && domain.front() == '[' && domain.back() == ']')
      literal = domain.substr(1, domain.size() - 2);
    if (!literal.empty()) {
      if (istarts_with(literal, "ipv6:")) literal = literal.substr(5);
      dns::Destination d;
      d.site = "[" + literal + "]";
      d.hosts.push_back(dns::Host{literal, {literal}, options_.delivery.port, {}});
      on_resolved(id, domain, std::move(rcpts), std::move(d));
      continue;
    }
    resolver_.resolve(domain, [this, id, domain, rcpts](dns::ResolveResult r) mutable {
      asio::post(strand_, [this, id, domain, rcpts = std::move(rcpts), r = std::move(r)]() mutable {
        on_resolved(id, domain, std::move(rcpts), std::move(r));
      });
    });
  }
}

void Manager::on_resolved(spool::MessageId id, const std::string& domain, std::vector<size_t> rcpts,
                          dns::ResolveResult result) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  InFlight& m = *it->second;
  if (!result.ok()) {
    const auto& e = result.error();
    // Classified like any reply: a DNS failure is category dns, an MTA-STS refusal tls.
    classify::Input in;
    in.stage = outbound::Stage::kDns;
    in.reply = &e.reply;
    const classify::Verdict v = options_.classifier ? options_.classifier->classify(in)
                                                    : classify::Verdict{};
    for (size_t i : rcpts) {
      m.results[i] = RecipientResult{i, e.permanent ? Outcome::kPermanent : Outcome::kTransient,
                                     outbound::Stage::kDns, e.reply};
      record(m, *m.results[i], "", "", Where{domain, "", "", "", m.pool, ""},
             options_.classifier ? classify::category_name(v.category) : std::string_view(),
             v.rule);
    }
    if (--m.outstanding == 0) settle(id);
    return;
  }
  SiteState& site = dispatcher_->site_for(*result, domain);
  // An operator's rule by site applies now that the site is known.
  if (apply_admin_rule(m, domain, rcpts, site.name)) {
    if (--m.outstanding == 0) settle(id);
    return;
  }
  const std::string pool = pool_of(m, domain, site.name);
  const size_t per = options_.delivery.max_recipients_per_transaction;
  size_t jobs = 0;
  for (size_t start = 0; start < rcpts.size(); start += per) {
    if (!m.shared) m.shared = std::make_shared<const spool::MessageMeta>(m.meta);
    outbound::Job job;
    job.meta = m.shared;
    job.recipients.assign(rcpts.begin() + start,
                          rcpts.begin() + std::min(rcpts.size(), start + per));
    dispatcher_->add(site, pool, id, std::move(job));
    ++jobs;
  }
  m.outstanding += jobs - 1;
  dispatcher_->open(site, pool);
}

std::string Manager::pool_of(const InFlight& m, const std::string& domain,
                             const std::string& site) const {
  const AdminRule* r = admin_.rebind(m.meta, domain, site, now_ms());
  return r && options_.egress.pools.count(r->pool) ? r->pool : m.pool;
}

std::string Manager::pool_for(const spool::MessageMeta& meta) const {
  const auto& e = options_.egress;
  if (!meta.pool.empty() && e.pools.count(meta.pool)) return meta.pool;
  if (auto t = e.tenants.find(meta.tenant); t != e.tenants.end()) return t->second.pool;
  return "default";
}

std::string Manager::tenant_key(const spool::MessageMeta& meta) const {
  return options_.egress.tenants.count(meta.tenant) ? meta.tenant : std::string();
}

Manager::Where Manager::where(const JobRef* ref, const Lane* lane) const {
  Where w;
  if (ref) {
    w.site = ref->site;
    w.pool = ref->pool;
    if (SiteState* s = dispatcher_->site(ref->site)) w.provider = s->dest.provider;
  }
  if (lane) {
    w.source = lane->source;
    w.source_ip = lane->address;
  }
  return w;
}

void Manager::on_parked(const JobRef& ref, const outbound::Job& job, int64_t until_ms,
                        const std::string& why) {
  auto it = in_flight_.find(ref.message);
  if (it == in_flight_.end()) return;
  InFlight& m = *it->second;
  for (size_t i : job.recipients) {
    m.results[i] = RecipientResult{i, Outcome::kTransient, outbound::Stage::kConnect,
                                   smtp::Reply::make(451, "4.7.0", "sluice: " + why)};
    defer(m, i, until_ms);
  }
  if (--m.outstanding == 0) settle(ref.message);
}

asio::awaitable<std::optional<outbound::Job>> Manager::next_job(const std::string& lane,
                                                                uint32_t done) {
  return dispatcher_->next_job(lane, done);
}

void Manager::report(outbound::JobReport r) {
  asio::post(strand_, [this, r = std::move(r)]() mutable { on_report(std::move(r)); });
}

void Manager::connection_established(const std::string& lane) {
  asio::post(strand_, [this, lane] { dispatcher_->connection_established(lane); });
}

void Manager::connection_closed(const std::string& lane, bool established) {
  asio::post(strand_, [this, lane, established] {
    dispatcher_->connection_closed(lane, established);
    maybe_stopped();
  });
}

void Manager::on_report(outbound::JobReport r) {
  JobRef* job = dispatcher_->job(r.token);
  if (!job) return;
  dispatcher_->release_body(r.token);  // the connection is done with the body
  const JobRef ref = *job;
  auto it = in_flight_.find(ref.message);
  if (it == in_flight_.end()) {
    dispatcher_->forget_job(r.token);
    return;
  }
  InFlight& m = *it->second;
  Lane* lane = dispatcher_->lane(ref.lane);
  Where at = where(&ref, lane);
  at.tls = r.tls;
  const int64_t now = now_ms();
  std::vector<size_t> again;  // recipients back to the ready queue, uncharged
  bool signalled = false;
  bool delivered_now = false;  // some recipient of this job was delivered
  bool suspended = false;      // this report suspended the lane
  for (auto& res : r.results) {
    if (res.index >= m.results.size()) continue;
    m.remote[res.index] = r.remote_host;
    Reading reading;
    if (lane) {
      reading = reader_->read(*lane, res, r.transactions_before, at.provider, now);
      if (reading.change)
        dispatcher_->changed(*lane, *reading.change, res.reply.summary(),
                             classify::category_name(reading.verdict.category), "site unavailable");
    } else {
      static const classify::Classifier kCodeOnly;
      classify::Input in;
      in.stage = res.stage;
      in.reply = &res.reply;
      in.provider = at.provider;
      reading.verdict = (options_.classifier ? *options_.classifier : kCodeOnly).classify(in);
    }
    const classify::Verdict& v = reading.verdict;
    const auto category = classify::category_name(v.category);
    const bool too_old = now - m.meta.received_ms >= options_.queue.max_age.count();
    if (v.action == Action::kNone) {
      res.outcome = Outcome::kDelivered;
      delivered_now = true;
      if (lane) ReplyReader::delivered(*lane, now);
    } else if (reading.outage != Outage::kNone) {
      // A dead destination: the lane is held (one probe on a backoff) and its messages wait
      // for it, or go through the pool's other sources. One attempt is counted per outage, to
      // the message that found it; the others wait uncharged; expiry still applies.
      res.outcome = Outcome::kTransient;
      if (!too_old && m.requeues < kMaxRequeues) {
        const bool found_it = reading.outage == Outage::kBegins;
        record(m, res, r.remote_host, r.remote_ip, at, category, v.rule, found_it);
        if (found_it) ++m.meta.attempts;  // persisted when the message is next settled
        again.push_back(res.index);
        continue;
      }
      m.defer_until[res.index] = 0;
    } else if (!classify::is_throttle(v.action) || !lane) {
      res.outcome = v.hard ? Outcome::kPermanent : Outcome::kTransient;
    } else {
      res.outcome = Outcome::kTransient;
      if (!signalled) {
        if (auto c = ReplyReader::apply(*lane, v, res, r.transactions_before, now)) {
          dispatcher_->changed(*lane, *c, res.reply.summary(), category, v.rule);
          suspended = v.action == Action::kSuspend;
        }
      }
      signalled = true;
      ++lane->throttled;
      bool charged = false;
      // A suspension holds the message until it ends, unless another source of its pool may
      // still send to the site: then it goes back to the queue for that one.
      const bool elsewhere =
          v.action == Action::kSuspend && dispatcher_->other_lane_open(ref, *lane);
      if (v.action == Action::kSuspend && !elsewhere) {
        defer(m, res.index, lane->ctl->suspended_until_ms());
        charged = m.defer_until[res.index] == 0;
      } else if (v.action == Action::kGreylistRetry) {
        defer(m, res.index, now + options_.shaping.tuning.greylist_retry.count());
        charged = m.defer_until[res.index] == 0;
      } else if (!too_old && m.requeues < kMaxRequeues) {
        // reduce-* (or suspended here, open elsewhere): straight back to the ready queue.
        record(m, res, r.remote_host, r.remote_ip, at, category, v.rule, false);
        again.push_back(res.index);
        continue;
      } else {
        // Past its lifetime, or thrown back too often in one round: this counts as an attempt
        // (a receiver that keeps refusing must not keep a message cycling for ever).
        m.defer_until[res.index] = 0;
        charged = true;
      }
      record(m, res, r.remote_host, r.remote_ip, at, category, v.rule, charged);
      m.results[res.index] = std::move(res);
      continue;
    }
    record(m, res, r.remote_host, r.remote_ip, at, category, v.rule, true);
    m.defer_until[res.index] = 0;
    m.results[res.index] = std::move(res);
  }
  if (lane) ReplyReader::trim(*lane, now);
  // Recipients delivered while others of the message are still to go are written down now.
  if (delivered_now && (m.outstanding > 1 || !again.empty())) persist_progress(m);
  SiteState* site = dispatcher_->site(ref.site);
  if (!again.empty() && site && !stopping_) {
    ++m.requeues;
    outbound::Job back;
    back.meta = m.shared;
    back.recipients = std::move(again);
    dispatcher_->requeue(r.token, std::move(back));
    if (suspended) dispatcher_->reopen(*site);
    return;
  }
  dispatcher_->forget_job(r.token);
  if (!again.empty()) {  // stopping, or the site is gone: retried from the spool
    for (size_t i : again) defer(m, i, now);
  }
  // A suspended lane's queues go to the pool's other sources, or park (dispatcher).
  if (suspended && site) dispatcher_->reopen(*site);
  if (--m.outstanding == 0) settle(ref.message);
}

void Manager::arm_timer() {
  const auto due = queue_.next_due();
  if (!due || stopping_ || options_.queue.hold) return;
  const int64_t wait = std::max<int64_t>(0, *due - now_ms());
  timer_.expires_after(std::chrono::milliseconds(wait));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) pull_due();
  });
}

void Manager::pull_due() {
  if (stopping_ || options_.queue.hold) return;
  const int64_t now = now_ms();
  while (in_flight_.size() < options_.max_in_flight) {
    auto due = queue_.pop_due(now);
    if (!due) break;
    const spool::MessageId id = due->first;
    if (in_flight_.count(id)) continue;
    auto meta = spool_.read_meta(id);
    if (!meta) continue;  // removed meanwhile
    if (held_by_cadence(*meta)) continue;
    start(std::move(*meta));
  }
  scheduled_count_ = queue_.size();
  arm_timer();
}

bool Manager::held_by_cadence(const spool::MessageMeta& meta) {
  if (options_.queue.hold || meta.attempts != 0 || !cadence_.shaped(meta.campaign) ||
      released_.count(meta.id))
    return false;
  const std::string key = "campaign/" + meta.campaign;
  if (!cadence_.known(meta.campaign)) {
    // The window an earlier run opened: a restart spreads what is left over the rest of it.
    if (auto st = spool_.read_state(key); st.ok()) {
      for (const auto& [k, v] : *st) {
        if (k == key) cadence_.restore(meta.campaign, std::strtoll(v.c_str(), nullptr, 10));
      }
    }
  }
  if (const int64_t opened = cadence_.hold(meta.campaign, meta.id, now_ms()))
    (void)spool_.put_state(key, std::to_string(opened));
  arm_cadence();
  return true;
}

void Manager::arm_cadence() {
  const auto next = cadence_.next_release();
  if (!next || stopping_) return;
  const int64_t at = std::max(*next, now_ms());
  if (cadence_at_ms_ && cadence_at_ms_ <= at) return;  // armed for sooner
  cadence_at_ms_ = at;
  cadence_timer_.expires_after(std::chrono::milliseconds(at - now_ms()));
  cadence_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    cadence_at_ms_ = 0;
    release_cadence();
  });
}

void Manager::release_cadence() {
  for (spool::MessageId id : cadence_.release(now_ms())) {
    released_.insert(id);
    auto meta = spool_.read_meta(id);
    if (meta) schedule_or_start(std::move(*meta));
  }
  arm_cadence();
}

void Manager::stop(std::function<void()> done) {
  asio::post(strand_, [this, done = std::move(done)]() mutable {
    stopping_ = true;
    on_stopped_ = std::move(done);
    timer_.cancel();
    cadence_timer_.cancel();
    dispatcher_->stop();
    maybe_stopped();
  });
}

void Manager::maybe_stopped() {
  if (!stopping_ || dispatcher_->connections() > 0 || !on_stopped_) return;
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

void Manager::sites_json(std::function<void(std::string)> done) {
  asio::post(strand_, [this, done = std::move(done)] { done(dispatcher_->lanes_json()); });
}

void Manager::gauges_text(std::function<void(std::string)> done) {
  asio::post(strand_, [this, done = std::move(done)] {
    observe::Gauges g;
    g.family("sluice_queue_messages",
             "Messages in the queue: scheduled (waiting for their time), in flight (being worked "
             "on), held by a campaign's cadence.");
    g.sample("sluice_queue_messages", {{"state", "scheduled"}}, static_cast<double>(queue_.size()));
    g.sample("sluice_queue_messages", {{"state", "in_flight"}},
             static_cast<double>(in_flight_.size()));
    g.sample("sluice_queue_messages", {{"state", "cadence"}},
             static_cast<double>(cadence_.waiting()));
    dispatcher_->gauges(g);
    done(g.take());
  });
}

void Manager::sources_json(std::function<void(std::string)> done) {
  asio::post(strand_, [this, done = std::move(done)] { done(dispatcher_->sources_json()); });
}

void Manager::message_json(const spool::MessageMeta& meta, std::function<void(std::string)> done) {
  std::vector<std::string> domains;
  for (const auto& r : meta.recipients) {
    const size_t at = r.address.rfind('@');
    std::string d = at == std::string::npos ? std::string() : to_lower(r.address.substr(at + 1));
    if (!d.empty() && std::find(domains.begin(), domains.end(), d) == domains.end())
      domains.push_back(std::move(d));
  }
  asio::post(strand_, [this, id = meta.id, domains = std::move(domains), done = std::move(done)] {
    JsonLine j;
    auto it = in_flight_.find(id);
    j.str("state", it != in_flight_.end() ? "in-flight" : "scheduled");
    if (it != in_flight_.end()) {
      std::string jobs = "[";
      for (const JobRef* ref : dispatcher_->jobs_of(id)) {
        if (jobs.size() > 1) jobs.push_back(',');
        append_json_string(jobs, ref->site);
      }
      jobs.push_back(']');
      j.unum("outstanding", it->second->outstanding)
          .str("pool", it->second->pool)
          .raw("job_sites", jobs);
    }
    // Each recipient domain's site, as far as this server has met it.
    std::string sites = "[";
    for (const auto& d : domains) {
      if (sites.size() > 1) sites.push_back(',');
      sites += dispatcher_->domain_json(d);
    }
    sites.push_back(']');
    j.raw("domains", sites);
    std::string out = j.finish();
    out.pop_back();
    done(std::move(out));
  });
}

}  // namespace sluice::queue
