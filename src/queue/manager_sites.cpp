// The queue manager's sites: connections opened as each shaping key allows, jobs handed to
// them (paced), every reply classified, and the verdict applied to the key and the message.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

#include "core/json.h"
#include "core/text.h"
#include "net/post.h"
#include "observe/event_log.h"
#include "queue/manager.h"
#include "queue/manager_state.h"
#include "spool/spool.h"

namespace sluice::queue {
namespace asio = boost::asio;
using classify::Action;
using outbound::Outcome;
using outbound::RecipientResult;

namespace {

constexpr int64_t kTickMs = 1000;         // probing, decay and parking run this often
constexpr int64_t kParkAfterMs = 30'000;  // a key closed longer than this parks its messages
constexpr int64_t kRecentMs = 3000;       // the window of the delivered-rate measurement
constexpr uint32_t kMaxRequeues = 10;     // uncharged returns to the ready queue per round
constexpr int64_t kBacklogSeconds = 60;   // a paced key keeps this much work in memory
// Unexplained refusals of messages that read as a rate limit: at least this many in kRecentMs,
// and at least 1 in kRateRefusalShare of the messages tried then (random failures are rarer),
// or any such burst once the key is paced by a learned rate.
constexpr size_t kRateRefusals = 5;
constexpr size_t kRateRefusalShare = 10;

std::string iso_ms(int64_t ms) {
  const std::time_t secs = ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

Manager::Site& Manager::site_for(const dns::Destination& d, const std::string& domain) {
  auto& ptr = sites_[d.site];
  const config::ShapingLimits limits = options_.shaping.limits_for(d.provider, d.site, domain);
  if (!ptr) {
    ptr = std::make_unique<Site>();
    Site& s = *ptr;
    s.name = d.site;
    s.key = options_.delivery.source_ip + "|" + d.site;
    s.ctl = std::make_unique<shaping::Controller>(limits, options_.shaping.tuning, now_ms());
    s.wake = std::make_unique<asio::steady_timer>(strand_);
    // What an earlier run (or this one, before the site was forgotten) learned about it.
    std::string key(kShapingStatePrefix);
    key += s.key;
    if (auto st = spool_.read_state(key); st.ok()) {
      for (const auto& [k, v] : *st) {
        if (k != key) continue;  // a longer key with this one as its prefix
        if (auto l = shaping::Learned::decode(v)) s.ctl->restore(*l, now_ms());
      }
    }
  } else if (options_.shaping.domains.count(domain)) {
    ptr->ctl->set_limits(limits);  // a domain override applies to the site it lands on
  }
  Site& s = *ptr;
  s.dest = d;  // the newest answer wins (TTL expiry, changed MX)
  if (std::find(s.domains.begin(), s.domains.end(), domain) == s.domains.end() &&
      s.domains.size() < 20)
    s.domains.push_back(domain);
  return s;
}

void Manager::open_connections(Site& site) {
  const int64_t now = now_ms();
  while (!stopping_ && !site.ready.empty() &&
         (site.connections == 0 || site.ready.size() > site.connections)) {
    if (!site.ctl->may_open(now, site.connections)) {
      if (const int64_t at = site.ctl->reopen_at_ms(now)) wake_at(site, at);
      // A key closed for long with nothing open parks its messages in the scheduled queue
      // (uncharged) instead of holding them in memory.
      if (site.connections == 0 && site.ctl->reopen_at_ms(now) - now > kParkAfterMs)
        park(site, site.ctl->reopen_at_ms(now),
             site.ctl->suspended(now) ? "suspended" : "held after refused connections");
      return;
    }
    if (const int64_t wait = site.ctl->take_message(now)) {
      wake_at(site, now + wait);
      // A paced key keeps about a minute of work in memory; the rest waits in the scheduled
      // queue (uncharged), so that one slow receiver cannot take every in-flight slot.
      const double rate = site.ctl->message_rate();
      const auto keep = static_cast<size_t>(std::max(100.0, rate * kBacklogSeconds));
      if (site.ready.size() > keep)
        park(site, now + kBacklogSeconds * 1000, "paced by its message rate", keep);
      return;
    }
    // The global cap on outbound connections: a site that would go over it waits its turn,
    // and connections that close go to the waiting sites in turn (connection_closed). No site
    // takes more than three quarters of the cap, so a slow or hung one cannot starve the rest.
    const uint32_t cap = options_.delivery.max_connections;
    if (cap > 1 && site.connections >= std::max<uint32_t>(1, cap * 3 / 4)) return;
    if (connections_ >= cap) {
      if (!site.waiting_slot) {
        site.waiting_slot = true;
        slot_waiters_.push_back(site.name);
      }
      return;
    }
    auto job = take_job(site);
    if (!job) break;
    job->next_mx_on_refusal = site.established == 0;
    site.ctl->opened(now);
    ++site.connections;
    ++connections_;
    asio::co_spawn(
        asio::make_strand(ioc_), outbound::run_connection(client_, site.dest, std::move(*job)),
        [](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            std::fprintf(stderr, "sluice: delivery connection ended by exception: %s\n", ex.what());
          }
        });
  }
}

void Manager::grant_slots() {
  // Bounded: a site that cannot take a slot now goes to the back and is not asked again here.
  for (size_t n = slot_waiters_.size();
       n > 0 && connections_ < options_.delivery.max_connections && !slot_waiters_.empty(); --n) {
    const std::string name = std::move(slot_waiters_.front());
    slot_waiters_.pop_front();
    auto it = sites_.find(name);
    if (it == sites_.end()) continue;
    it->second->waiting_slot = false;
    open_connections(*it->second);  // back of the line if it wants more than the cap allows
  }
}

void Manager::keep_share(Site& site) {
  const size_t share = std::max<size_t>(1, options_.max_in_flight / 4);
  if (site.ready.size() > share) {
    park(site, now_ms() + kBacklogSeconds * 1000, "over its share of the messages in flight",
         share);
  }
}

void Manager::wake_at(Site& site, int64_t at_ms) {
  if (stopping_ || (site.wake_at_ms && site.wake_at_ms <= at_ms)) return;
  site.wake_at_ms = at_ms;
  site.wake->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, at_ms - now_ms())));
  // By name: the site may have been forgotten (tick) by the time the wait completes.
  site.wake->async_wait([this, name = site.name](const boost::system::error_code& ec) {
    if (ec) return;
    auto it = sites_.find(name);
    if (it == sites_.end()) return;
    it->second->wake_at_ms = 0;
    open_connections(*it->second);
  });
}

void Manager::tick() {
  if (stopping_) return;
  const int64_t now = now_ms();
  std::vector<std::string> forget;
  for (auto& [name, ptr] : sites_) {
    Site& s = *ptr;
    const bool waiting = !s.ready.empty();
    const bool full = s.connections >= s.ctl->connection_limit();
    if (auto c = s.ctl->tick(now, waiting, full)) {
      log_change(s, *c);
      save_learned(s);
    }
    // A site with nothing open, nothing waiting and no timer for a while leaves memory; its
    // learned state is in the spool database and comes back when the site is seen again.
    const bool idle =
        s.connections == 0 && s.ready.empty() && s.wake_at_ms == 0 && !s.ctl->suspended(now);
    if (!idle)
      s.idle_since_ms = 0;
    else if (s.idle_since_ms == 0)
      s.idle_since_ms = now;
    else if (now - s.idle_since_ms > options_.shaping.tuning.forget_after.count())
      forget.push_back(name);
  }
  for (const auto& name : forget) {
    auto it = sites_.find(name);
    if (!it->second->ctl->in_slow_start()) save_learned(*it->second);
    sites_.erase(it);
  }
  // Opening connections may settle messages (parking), so it runs over names, not iterators.
  std::vector<std::string> waiting;
  for (const auto& [name, ptr] : sites_) {
    if (!ptr->ready.empty()) waiting.push_back(name);
  }
  for (const auto& name : waiting) {
    if (auto it = sites_.find(name); it != sites_.end()) open_connections(*it->second);
  }
  tick_timer_.expires_after(std::chrono::milliseconds(kTickMs));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void Manager::park(Site& site, int64_t until_ms, const std::string& why, size_t keep) {
  while (site.ready.size() > keep) {
    outbound::Job job = std::move(site.ready.back());  // the last in line go first
    site.ready.pop_back();
    auto ref = jobs_.find(job.token);
    if (ref == jobs_.end()) continue;
    const spool::MessageId id = ref->second.id;
    jobs_.erase(ref);
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) continue;
    InFlight& m = *it->second;
    for (size_t i : job.recipients) {
      m.results[i] =
          RecipientResult{i, Outcome::kTransient, outbound::Stage::kConnect,
                          smtp::Reply::make(451, "4.7.0",
                                            "sluice: " + site.name + " is " + why + " until " +
                                                iso_ms(until_ms) + ": " + site.last_signal)};
      defer(m, i, until_ms);
    }
    if (--m.outstanding == 0) settle(id);
  }
}

void Manager::defer(InFlight& m, size_t index, int64_t until_ms) {
  // Past its lifetime the message is charged, so that settling expires it.
  m.defer_until[index] =
      until_ms - m.meta.received_ms > options_.queue.max_age.count() ? 0 : until_ms;
}

std::optional<outbound::Job> Manager::take_job(Site& site) {
  while (!site.ready.empty()) {
    // Bodies held by connections stay within [delivery] max_bytes_in_flight (one message at a
    // time may exceed it alone): over it, the site waits its turn like under the connection cap.
    const uint64_t size = site.ready.front().meta->size;
    if (body_bytes_ > 0 && body_bytes_ + size > options_.delivery.max_bytes_in_flight) {
      if (!site.waiting_slot) {
        site.waiting_slot = true;
        slot_waiters_.push_back(site.name);
      }
      return std::nullopt;
    }
    outbound::Job job = std::move(site.ready.front());
    site.ready.pop_front();
    auto body = spool_.read_body(job.meta->id);
    if (body) {
      job.body = std::move(*body);
      if (auto ref = jobs_.find(job.token); ref != jobs_.end()) {
        ref->second.body_bytes = job.body.size();
        body_bytes_ += job.body.size();
      }
      return job;
    }
    // The body is unreadable (disk error): the job fails transiently and is retried later.
    outbound::JobReport r{job.token, {}, "", "", 0};
    for (size_t i : job.recipients) {
      r.results.push_back({i, Outcome::kTransient, outbound::Stage::kConnect,
                           smtp::Reply::make(451, "4.3.0", body.error().message)});
    }
    asio::post(strand_, [this, r = std::move(r)]() mutable { on_report(std::move(r)); });
  }
  return std::nullopt;
}

Manager::Take Manager::take_next(const std::string& site_name, uint32_t done) {
  auto it = sites_.find(site_name);
  if (stopping_ || it == sites_.end()) return {};
  Site& site = *it->second;
  const int64_t now = now_ms();
  if (site.ready.empty() || done >= site.ctl->max_deliveries() || site.ctl->suspended(now))
    return {};
  const int64_t idle = site.ctl->limits().idle_timeout.count();
  if (const int64_t wait = site.ctl->take_message(now)) return Take{std::nullopt, wait, idle};
  return Take{take_job(site), 0, idle};
}

asio::awaitable<std::optional<outbound::Job>> Manager::next_job(const std::string& site,
                                                                uint32_t done) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer pause(ex);
  int64_t waited = 0;
  for (;;) {
    // Named, not a temporary inside the co_await: GCC 12 destroys such temporaries twice.
    auto take = [this, site, done] { return take_next(site, done); };
    Take t = co_await net::run_on(strand_, std::move(take), asio::use_awaitable);
    if (t.job || t.wait_ms <= 0 || waited + t.wait_ms > t.idle_ms) co_return std::move(t.job);
    // Message pacing: this connection waits for the key's next slot instead of closing.
    pause.expires_after(std::chrono::milliseconds(t.wait_ms));
    co_await pause.async_wait(asio::use_awaitable);
    waited += t.wait_ms;
  }
}

void Manager::report(outbound::JobReport r) {
  asio::post(strand_, [this, r = std::move(r)]() mutable { on_report(std::move(r)); });
}

void Manager::on_report(outbound::JobReport r) {
  auto job = jobs_.find(r.token);
  if (job == jobs_.end()) return;
  if (job->second.body_bytes) {  // the connection is done with the body
    body_bytes_ -= job->second.body_bytes;
    job->second.body_bytes = 0;
    if (!slot_waiters_.empty()) asio::post(strand_, [this] { grant_slots(); });
  }
  const JobRef ref = job->second;
  auto it = in_flight_.find(ref.id);
  if (it == in_flight_.end()) {
    jobs_.erase(job);
    return;
  }
  InFlight& m = *it->second;
  const auto site_it = sites_.find(ref.site);
  Site* site = site_it != sites_.end() ? site_it->second.get() : nullptr;
  const std::string provider = site ? site->dest.provider : std::string();
  const int64_t now = now_ms();
  std::vector<size_t> again;  // recipients back to the ready queue, uncharged
  bool signalled = false;
  bool delivered_now = false;  // some recipient of this job was delivered
  for (auto& res : r.results) {
    if (res.index >= m.results.size()) continue;
    m.remote[res.index] = r.remote_host;
    classify::Input in;
    in.stage = res.stage;
    in.reply = &res.reply;
    in.provider = provider;
    // Connections that work, other than the one that got this reply.
    const bool this_works = res.stage >= outbound::Stage::kMail;
    const uint32_t working = site ? site->established : 0;
    const uint32_t others_working = working - (this_works && working ? 1u : 0u);
    in.others_open = others_working > 0;
    static const classify::Classifier kCodeOnly;
    classify::Verdict v = (options_.classifier ? *options_.classifier : kCodeOnly).classify(in);
    const Outage outage =
        site ? read_behaviour(*site, res, r.transactions_before, others_working, v) : Outage::kNone;
    if (v.action == Action::kNone) {
      res.outcome = Outcome::kDelivered;
      delivered_now = true;
      if (site) {
        ++site->delivered;
        site->recent.push_back(now);
      }
    } else if (outage != Outage::kNone) {
      // A dead destination: the site is held (one probe on a backoff) and its messages wait
      // for it. One attempt is counted per outage, to the message that found it; the others
      // wait uncharged; expiry still applies.
      res.outcome = Outcome::kTransient;
      const bool too_old = now - m.meta.received_ms >= options_.queue.max_age.count();
      if (!too_old && m.requeues < kMaxRequeues) {
        const bool found_it = outage == Outage::kBegins;
        record(m, res, r.remote_host, r.remote_ip, ref.site, provider,
               classify::category_name(v.category), v.rule, found_it);
        if (found_it) ++m.meta.attempts;  // persisted when the message is next settled
        again.push_back(res.index);
        continue;
      }
      m.defer_until[res.index] = 0;
    } else if (!classify::is_throttle(v.action) || !site) {
      res.outcome = v.hard ? Outcome::kPermanent : Outcome::kTransient;
    } else {
      res.outcome = Outcome::kTransient;
      if (!signalled) apply_signal(*site, v, res, r.transactions_before);
      signalled = true;
      ++site->throttled;
      const bool too_old = now - m.meta.received_ms >= options_.queue.max_age.count();
      bool charged = false;
      if (v.action == Action::kSuspend) {
        defer(m, res.index, site->ctl->suspended_until_ms());
        charged = m.defer_until[res.index] == 0;
      } else if (v.action == Action::kGreylistRetry) {
        defer(m, res.index, now + options_.shaping.tuning.greylist_retry.count());
        charged = m.defer_until[res.index] == 0;
      } else if (!too_old && m.requeues < kMaxRequeues) {
        // reduce-*: straight back to the ready queue.
        record(m, res, r.remote_host, r.remote_ip, ref.site, provider,
               classify::category_name(v.category), v.rule, false);
        again.push_back(res.index);
        continue;
      } else {
        // Past its lifetime, or thrown back too often in one round: this counts as an attempt
        // (a receiver that keeps refusing must not keep a message cycling for ever).
        m.defer_until[res.index] = 0;
        charged = true;
      }
      record(m, res, r.remote_host, r.remote_ip, ref.site, provider,
             classify::category_name(v.category), v.rule, charged);
      m.results[res.index] = std::move(res);
      continue;
    }
    record(m, res, r.remote_host, r.remote_ip, ref.site, provider,
           classify::category_name(v.category), v.rule, true);
    m.defer_until[res.index] = 0;
    m.results[res.index] = std::move(res);
  }
  if (site) {
    while (!site->recent.empty() && site->recent.front() < now - kRecentMs)
      site->recent.pop_front();
  }
  // Recipients delivered while others of the message are still to go are written down now.
  if (delivered_now && (m.outstanding > 1 || !again.empty())) persist_progress(m);
  if (!again.empty() && site && !stopping_) {
    ++m.requeues;
    // The same job (same token), at the front: it was next in line.
    outbound::Job back;
    back.meta = m.shared;
    back.recipients = std::move(again);
    back.token = r.token;
    site->ready.push_front(std::move(back));
    open_connections(*site);  // only what the key now allows: no reconnect storm
    return;
  }
  jobs_.erase(r.token);  // by key: what ran since the lookup may have rehashed jobs_
  if (!again.empty()) {  // stopping, or the site is gone: retried from the spool
    for (size_t i : again) defer(m, i, now);
  }
  if (--m.outstanding == 0) settle(ref.id);
}

Manager::Outage Manager::read_behaviour(Site& site, const RecipientResult& res,
                                        uint32_t transactions_before, uint32_t others_working,
                                        classify::Verdict& v) {
  // Only a refusal before the connection worked for anything (connect, banner, EHLO, STARTTLS,
  // or MAIL of its first transaction), soft, that the words did not explain as a throttle
  // signal of their own: what the receiver does then says what its words do not.
  const bool before_work =
      res.stage == outbound::Stage::kConnect || res.stage == outbound::Stage::kBanner ||
      res.stage == outbound::Stage::kEhlo || res.stage == outbound::Stage::kStartTls ||
      (res.stage == outbound::Stage::kMail && transactions_before == 0);
  const bool unexplained = !v.by_words || v.category == classify::Category::kOther ||
                           v.category == classify::Category::kNetwork;
  // The word model's guess (rule "model") is weaker than what the site does: behaviour reads
  // the site even when the guess is a throttle signal.
  const bool guessed = v.rule == "model";
  if (v.hard || v.action == Action::kNone || (classify::is_throttle(v.action) && !guessed) ||
      !unexplained)
    return Outage::kNone;
  if (!before_work) {
    // A message refused on a working connection, words explaining nothing: one is the message's
    // own trouble, but refusals that come in numbers while other messages go through track the
    // number of messages per time window — a rate limit, learned as from a known text.
    if (res.stage < outbound::Stage::kMail) return Outage::kNone;
    const int64_t now = now_ms();
    site.refusals.push_back(now);
    while (site.refusals.front() < now - kRecentMs) site.refusals.pop_front();
    const auto delivered = static_cast<size_t>(std::count_if(
        site.recent.begin(), site.recent.end(), [&](int64_t t) { return t >= now - kRecentMs; }));
    const size_t refused = site.refusals.size();
    const bool paced = site.ctl->learned().message_rate > 0;
    if (refused >= kRateRefusals && (paced || refused * kRateRefusalShare >= refused + delivered)) {
      v.category = classify::Category::kRateLimit;
      v.action = Action::kReduceRate;
      v.rule = "behaviour: refusals track the message rate";
    }
    return Outage::kNone;
  }
  if (others_working > 0) {
    // Refused while other connections to the site work: a connection limit, whatever the text
    // or code, or none at all (a hang-up) — learned exactly as from a known text.
    if (res.stage == outbound::Stage::kStartTls)
      return Outage::kNone;  // a TLS problem, not a count
    v.category = classify::Category::kConnectionLimit;
    v.action = Action::kReduceConnections;
    v.rule = "behaviour: refused while others work";
    return Outage::kNone;
  }
  // Nothing works: the site is unavailable (Postfix's dead destination). One probe at a time,
  // on a backoff; the first that works releases the site's messages. A refusal at MAIL may be
  // about the sender, not the site: it stays the message's own retry.
  if (res.stage == outbound::Stage::kMail) return Outage::kNone;
  v.rule = v.rule == "code" ? "behaviour: site unavailable" : v.rule;
  const int64_t now = now_ms();
  const Outage outage = site.ctl->unavailable() ? Outage::kOngoing : Outage::kBegins;
  if (auto change = site.ctl->on_unavailable(now)) {
    site.last_signal = res.reply.summary();
    site.last_category = classify::category_name(v.category);
    site.last_rule = "site unavailable";
    site.last_stage = outbound::stage_name(res.stage);
    site.last_signal_ms = now;
    ++site.refused_connections;
    log_change(site, *change, res.reply.summary(), classify::category_name(v.category),
               "site unavailable");
  }
  return outage;
}

void Manager::apply_signal(Site& site, const classify::Verdict& v, const RecipientResult& r,
                           uint32_t transactions_before) {
  const int64_t now = now_ms();
  site.last_signal = r.reply.summary();
  site.last_category = classify::category_name(v.category);
  site.last_rule = v.rule;
  site.last_stage = outbound::stage_name(r.stage);
  site.last_signal_ms = now;
  std::optional<shaping::Change> change;
  switch (v.action) {
    case Action::kReduceConnections: {
      ++site.refused_connections;
      // The connection that got the reply is not one that works, whatever its stage.
      const bool this_works = r.stage >= outbound::Stage::kMail;
      const uint32_t working = site.established - (this_works && site.established ? 1 : 0);
      change = site.ctl->on_connection_limit(now, working);
      break;
    }
    case Action::kReduceRate: {
      // What was delivered in the last few seconds, over the span it took (at least 1 s): a
      // key that has just started is not credited with the seconds before it.
      size_t n = 0;
      int64_t oldest = now;
      for (auto t = site.recent.rbegin(); t != site.recent.rend() && *t >= now - kRecentMs; ++t) {
        ++n;
        oldest = *t;
      }
      const double span = std::max<double>(1000.0, static_cast<double>(now - oldest)) / 1000.0;
      change = site.ctl->on_rate_limit(now, static_cast<double>(n) / span);
      break;
    }
    case Action::kReduceDeliveries:
      change = site.ctl->on_deliveries_limit(now, transactions_before);
      break;
    case Action::kSuspend:
      change = site.ctl->on_reputation(now, r.reply.summary());
      if (change) park(site, site.ctl->suspended_until_ms(), "suspended");
      break;
    default:
      break;
  }
  if (change) {
    log_change(site, *change, r.reply.summary(), classify::category_name(v.category), v.rule);
    save_learned(site);
  }
}

void Manager::log_change(const Site& site, const shaping::Change& c, const std::string& reply,
                         std::string_view category, std::string_view rule) {
  const bool suspension = c.what == "suspension";
  JsonLine line;
  line.timestamp()
      .str("event", suspension ? "Suspension" : "ThrottleChange")
      .str("source_ip", options_.delivery.source_ip)
      .str("site", site.name)
      .str("provider", site.dest.provider);
  if (suspension) {
    line.str("duration", c.to).str("until", iso_ms(site.ctl->suspended_until_ms()));
  } else {
    line.str("limit", c.what).str("from", c.from).str("to", c.to);
  }
  line.str("reason", c.why)
      .str("category", category)
      .str("rule", rule)
      .str("reply", reply)
      .unum("connections", site.connections);
  log_.write(line.finish());
}

void Manager::save_learned(const Site& site) {
  // Not synced: losing the last change in a crash costs a little relearning, never a message.
  std::string key(kShapingStatePrefix);
  key += site.key;
  (void)spool_.put_state(key, site.ctl->learned().encode());
}

void Manager::connection_established(const std::string& site_name) {
  asio::post(strand_, [this, site_name] {
    auto it = sites_.find(site_name);
    if (it == sites_.end()) return;
    Site& s = *it->second;
    ++s.established;
    if (auto c = s.ctl->on_connected(now_ms(), s.established)) {
      log_change(s, *c);
      if (!s.ctl->in_slow_start()) save_learned(s);
    }
    open_connections(s);  // slow start may allow another
  });
}

void Manager::connection_closed(const std::string& site_name, bool established) {
  asio::post(strand_, [this, site_name, established] {
    --connections_;
    grant_slots();  // sites waiting for a connection first, in turn, then this one
    if (auto it = sites_.find(site_name); it != sites_.end()) {
      Site& s = *it->second;
      --s.connections;
      if (established && s.established) --s.established;
      open_connections(s);  // jobs may have arrived while it was busy, or it broke
    }
    maybe_stopped();
  });
}

void Manager::sites_json(std::function<void(std::string)> done) {
  asio::post(strand_, [this, done = std::move(done)] {
    const int64_t now = now_ms();
    std::string out = "[";
    for (const auto& [name, ptr] : sites_) {
      const Site& s = *ptr;
      const shaping::Controller& c = *s.ctl;
      const config::ShapingLimits& l = c.limits();
      const shaping::Learned& learned = c.learned();
      if (out.size() > 1) out.push_back(',');
      std::string domains = "[";
      for (const auto& d : s.domains) {
        if (domains.size() > 1) domains.push_back(',');
        append_json_string(domains, d);
      }
      domains.push_back(']');
      JsonLine j;
      j.str("key", s.key)
          .str("source_ip", options_.delivery.source_ip)
          .str("site", s.name)
          .str("provider", s.dest.provider)
          .raw("domains", domains)
          .boolean("adaptive", l.adaptive)
          .unum("configured_connection_limit", l.connection_limit)
          .unum("connection_limit", c.connection_limit())
          .boolean("slow_start", c.in_slow_start())
          .unum("learned_connection_limit", learned.connection_limit)
          .unum("configured_max_deliveries_per_connection", l.max_deliveries_per_connection)
          .unum("max_deliveries_per_connection", c.max_deliveries())
          .num("configured_max_message_rate_per_hour",
               l.max_message_rate.limited()
                   ? static_cast<int64_t>(l.max_message_rate.per_second() * 3600)
                   : 0)
          .num("message_rate_per_hour", static_cast<int64_t>(c.message_rate() * 3600))
          .num("probe_interval_ms", learned.probe_interval_ms
                                        ? learned.probe_interval_ms
                                        : options_.shaping.tuning.probe_interval.count())
          .unum("open_connections", s.connections)
          .unum("working_connections", s.established)
          .unum("ready", s.ready.size())
          .unum("delivered", s.delivered)
          .unum("throttled", s.throttled)
          .unum("refused_connections", s.refused_connections)
          .boolean("held", now < c.hold_until_ms())
          .boolean("suspended", c.suspended(now))
          .str("suspended_until", c.suspended(now) ? iso_ms(c.suspended_until_ms()) : "")
          .str("suspend_reason", c.suspended(now) ? learned.suspend_reason : "")
          .str("last_signal", s.last_signal)
          .str("last_signal_at", s.last_signal_ms ? iso_ms(s.last_signal_ms) : "")
          .str("last_stage", s.last_stage)
          .str("last_category", s.last_category)
          .str("last_rule", s.last_rule);
      std::string obj = j.finish();
      obj.pop_back();  // the '\n'
      out += obj;
    }
    out.push_back(']');
    done(std::move(out));
  });
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
    const int64_t now = now_ms();
    JsonLine j;
    auto it = in_flight_.find(id);
    j.str("state", it != in_flight_.end() ? "in-flight" : "scheduled");
    if (it != in_flight_.end()) {
      std::string jobs = "[";
      for (const auto& [token, ref] : jobs_) {
        if (ref.id != id) continue;
        if (jobs.size() > 1) jobs.push_back(',');
        append_json_string(jobs, ref.site);
      }
      jobs.push_back(']');
      j.unum("outstanding", it->second->outstanding).raw("job_sites", jobs);
    }
    // Each recipient domain's site, as far as this server has met it.
    std::string sites = "[";
    for (const auto& d : domains) {
      const Site* found = nullptr;
      for (const auto& [name, ptr] : sites_) {
        if (std::find(ptr->domains.begin(), ptr->domains.end(), d) != ptr->domains.end()) {
          found = ptr.get();
          break;
        }
      }
      if (sites.size() > 1) sites.push_back(',');
      JsonLine e;
      e.str("domain", d);
      if (found) {
        const shaping::Controller& c = *found->ctl;
        e.str("site", found->name)
            .str("provider", found->dest.provider)
            .unum("connection_limit", c.connection_limit())
            .unum("open_connections", found->connections)
            .unum("ready", found->ready.size())
            .boolean("held", now < c.hold_until_ms())
            .boolean("suspended", c.suspended(now))
            .str("suspended_until", c.suspended(now) ? iso_ms(c.suspended_until_ms()) : "")
            .str("last_signal", found->last_signal)
            .str("last_category", found->last_category);
      } else {
        e.str("site", "");  // not being delivered to now
      }
      std::string obj = e.finish();
      obj.pop_back();
      sites += obj;
    }
    sites.push_back(']');
    j.raw("domains", sites);
    std::string out = j.finish();
    out.pop_back();
    done(std::move(out));
  });
}

}  // namespace sluice::queue
