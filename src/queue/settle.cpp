// A message's end of round: what the spool keeps of it (the recipients still to try, or
// nothing), when it is tried again, and the DSN for what failed or expired — written so that no
// acknowledged message and no bounce is lost to a crash or a full disk.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bounce/dsn.h"
#include "core/json.h"
#include "observe/event_log.h"
#include "observe/metrics.h"
#include "observe/recent_replies.h"
#include "queue/in_flight.h"
#include "spool/spool.h"

namespace sluice::queue {
namespace asio = boost::asio;
using outbound::Outcome;
using outbound::RecipientResult;

void Manager::record(InFlight& m, const RecipientResult& r, const std::string& remote_host,
                     const std::string& remote_ip, const Where& at, std::string_view category,
                     std::string_view rule, bool charged) {
  const char* event = r.outcome == Outcome::kDelivered   ? "Delivery"
                      : r.outcome == Outcome::kTransient ? "TransientFailure"
                                                         : "Bounce";
  if (category.empty()) category = outbound::outcome_name(r.outcome);
  JsonLine line;
  line.timestamp()
      .str("event", event)
      .str("id", spool::format_id(m.meta.id))
      .str("sender", m.meta.sender)
      .str("recipient", m.meta.recipients[r.index].address)
      .str("site", at.site)
      .str("provider", at.provider)
      .str("source", at.source)
      .str("source_ip", at.source_ip)
      .str("pool", at.pool)
      .str("tenant", m.meta.tenant)
      .str("campaign", m.meta.campaign)
      .str("remote_host", remote_host)
      .str("remote_ip", remote_ip)
      .str("tls", at.tls)
      .str("stage", outbound::stage_name(r.stage))
      .num("code", r.reply.code)
      .str("enhanced", r.reply.enhanced ? r.reply.enhanced->str() : std::string())
      .str("reply", r.reply.text())
      .str("category", category)
      .str("rule", rule)
      .unum("attempt", m.meta.attempts + 1)
      .boolean("charged", charged)
      .num("received_ms", m.meta.received_ms);
  log_.write(line.finish());
  if (options_.replies && r.outcome != Outcome::kDelivered) {
    std::string reply = r.reply.code ? std::to_string(r.reply.code) + " " : std::string();
    if (r.reply.enhanced) reply += r.reply.enhanced->str() + " ";
    options_.replies->add(at.provider.empty() ? at.site : at.provider,
                          {now_ms(), std::string(category), std::string(outbound::stage_name(r.stage)),
                           reply + r.reply.text(), at.source});
  }
  if (options_.metrics) {
    namespace metric = observe::metric;
    const std::string tenant = tenant_key(m.meta);
    observe::Labels labels{{"provider", at.provider}, {"source", at.source}, {"tenant", tenant}};
    if (r.outcome == Outcome::kDelivered) {
      options_.metrics->inc(metric::kDelivered, labels);
      options_.metrics->observe(metric::kDeliveryLatency,
                                static_cast<double>(now_ms() - m.meta.received_ms) / 1000.0);
    } else {
      labels.emplace_back("category", category);
      options_.metrics->inc(
          r.outcome == Outcome::kTransient ? metric::kDeferred : metric::kBounced, labels);
    }
  }
}

void Manager::defer(InFlight& m, size_t index, int64_t until_ms) {
  // Past its lifetime the message is charged, so that settling expires it.
  m.defer_until[index] =
      until_ms - m.meta.received_ms > options_.queue.max_age.count() ? 0 : until_ms;
}

void Manager::settle(spool::MessageId id) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  std::unique_ptr<InFlight> m = std::move(it->second);
  in_flight_.erase(it);
  queue_.finished(m->tenant);
  const int64_t now = now_ms();
  std::vector<size_t> failed, retry;
  bool charged = false;  // a retry that counts as an attempt (not only throttle deferrals)
  int64_t deferred_to = now;
  for (size_t i = 0; i < m->results.size(); ++i) {
    const auto& r = m->results[i];
    if (!r || r->outcome == Outcome::kTransient) {
      retry.push_back(i);
      if (m->defer_until[i] == 0)
        charged = true;
      else
        deferred_to = std::max(deferred_to, m->defer_until[i]);
    } else if (r->outcome == Outcome::kPermanent) {
      failed.push_back(i);
    }
  }
  // Throttle signals and greylisting do not charge an attempt: the message waits for the
  // deferral (a little jitter spreads a suspended key's messages), its count unchanged.
  const uint32_t attempts = charged ? m->meta.attempts + 1 : m->meta.attempts;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int64_t next_due = now;
  bool expired = false;
  if (!retry.empty() && charged) {
    const auto next =
        next_attempt_ms(options_.queue, m->meta.received_ms, attempts, now, unit(rng_));
    expired = !next.has_value();
    next_due = next.value_or(now);
  } else if (!retry.empty()) {
    const int64_t delay = deferred_to - now;
    const int64_t end_of_life = m->meta.received_ms + options_.queue.max_age.count();
    expired = deferred_to > end_of_life;
    next_due = std::min(end_of_life, deferred_to + static_cast<int64_t>(
                                                       static_cast<double>(delay) * 0.1 * unit(rng_)));
  }
  if (expired) {
    if (options_.metrics)
      options_.metrics->inc(observe::metric::kExpired, {}, static_cast<double>(retry.size()));
    for (size_t i : retry) {
      log_.write(
          JsonLine()
              .timestamp()
              .str("event", "Expiration")
              .str("id", spool::format_id(id))
              .str("sender", m->meta.sender)
              .str("recipient", m->meta.recipients[i].address)
              .unum("attempts", attempts)
              .num("received_ms", m->meta.received_ms)
              .str("pool", m->pool)
              .str("tenant", m->meta.tenant)
              .str("campaign", m->meta.campaign)
              .str("last_reply", m->results[i] ? m->results[i]->reply.summary() : std::string())
              .finish());
    }
  }
  // What the spool keeps: the recipients still to try, or nothing. Scheduled only once that is
  // durable: never retry from the old recipient list.
  // The message with only some of its recipients, for its next attempt.
  auto with = [&](const std::vector<size_t>& which, int64_t due) {
    spool::MessageMeta meta = m->meta;
    meta.recipients.clear();
    for (size_t i : which) meta.recipients.push_back(m->meta.recipients[i]);
    meta.attempts = attempts;
    meta.next_due_ms = due;
    return meta;
  };
  std::optional<spool::MessageMeta> keep;
  if (!retry.empty() && !expired) keep = with(retry, next_due);
  auto dispose = [this, id, keep = std::move(keep)]() mutable {
    if (!keep) {
      released_.erase(id);
      return write_until_done([this, id](auto done) { spool_.remove(id, done); }, id, "remove",
                              nullptr);
    }
    store_and_schedule(std::move(*keep));
  };
  if ((!failed.empty() || expired) && !m->meta.sender.empty()) {
    // The original goes only once its bounce is safely stored. If the DSN cannot be stored,
    // the message keeps every recipient not delivered and is tried again later: refused
    // recipients are refused again then, and their bounce goes that time.
    std::vector<size_t> undelivered;
    for (size_t i = 0; i < m->results.size(); ++i) {
      if (!m->results[i] || m->results[i]->outcome != Outcome::kDelivered)
        undelivered.push_back(i);
    }
    send_dsn(*m, failed, expired ? retry : std::vector<size_t>{},
             [this, dispose = std::move(dispose),
              again = with(undelivered, now + options_.queue.min_backoff.count())](
                 bool stored) mutable {
               if (stored) return dispose();
               store_and_schedule(std::move(again));
             });
  } else {
    dispose();
  }
  // Posted, not called: settle() runs inside report handling and parking, which must not see
  // new messages (and new jobs) appear under them.
  asio::post(strand_, [this] { pull_due(); });
}

std::function<void(const Status&)> Manager::spool_error_logger(spool::MessageId id,
                                                               const char* what) {
  return [this, id, what](const Status& st) {
    if (st) return;
    log_.write(JsonLine()
                   .timestamp()
                   .str("event", "SpoolError")
                   .str("id", spool::format_id(id))
                   .str("operation", what)
                   .str("error", st.error().message)
                   .finish());
  };
}

void Manager::store_and_schedule(spool::MessageMeta meta) {
  const spool::MessageId id = meta.id;
  const int64_t due = meta.next_due_ms;
  std::string tenant = tenant_key(meta);
  write_until_done([this, meta = std::move(meta)](auto done) { spool_.update(meta, done); }, id,
                   "update", [this, id, due, tenant = std::move(tenant)] {
                     schedule(tenant, id, due);
                   });
}

void Manager::schedule(const std::string& tenant, spool::MessageId id, int64_t due) {
  queue_.push(tenant, due, id);
  scheduled_count_ = queue_.size();
  arm_timer();
}

void Manager::write_until_done(SpoolWrite write, spool::MessageId id, const char* what,
                               std::function<void()> then, int64_t backoff_ms) {
  auto retry = write;  // the copy `write` hands over goes with the callback
  write([this, retry = std::move(retry), id, what, then = std::move(then),
         backoff_ms](const Status& st) mutable {
    spool_error_logger(id, what)(st);
    asio::post(strand_, [this, retry = std::move(retry), id, what, then = std::move(then),
                         backoff_ms, ok = st.ok()]() mutable {
      if (ok) {
        if (then) then();
        return;
      }
      if (stopping_) return;  // left on disk as it was; recovery takes it from there
      // A full disk or an I/O error: the same write again, later.
      auto timer = std::make_shared<asio::steady_timer>(strand_,
                                                        std::chrono::milliseconds(backoff_ms));
      timer->async_wait([this, timer, retry = std::move(retry), id, what, then = std::move(then),
                         backoff_ms](const boost::system::error_code& ec) mutable {
        if (ec || stopping_) return;
        write_until_done(std::move(retry), id, what, std::move(then),
                         std::min<int64_t>(backoff_ms * 2, kMaxSpoolRetryMs));
      });
    });
  });
}

void Manager::persist_progress(const InFlight& m) {
  spool::MessageMeta meta = m.meta;
  meta.recipients.clear();
  for (size_t i = 0; i < m.meta.recipients.size(); ++i) {
    const auto& r = m.results[i];
    if (r && r->outcome == Outcome::kDelivered) continue;
    meta.recipients.push_back(m.meta.recipients[i]);
  }
  spool_.update(std::move(meta), spool_error_logger(m.meta.id, "update"));
}

void Manager::send_dsn(const InFlight& m, const std::vector<size_t>& failed,
                       const std::vector<size_t>& expired, std::function<void(bool)> stored) {
  bounce::DsnInput in;
  in.original = &m.meta;
  in.reporting_mta = options_.hostname;
  in.now_ms = now_ms();
  auto add = [&](size_t i, bool is_expired) {
    const spool::Recipient& rc = m.meta.recipients[i];
    if (!bounce::wants_failure_notice(rc.notify)) return;
    const auto& r = m.results[i];
    bounce::RecipientStatus s;
    s.address = rc.address;
    s.orcpt_type = rc.orcpt_type;
    s.orcpt = rc.orcpt;
    s.action = "failed";
    s.remote_mta = m.remote[i];
    if (is_expired) {
      s.status = "4.4.7";
      s.diagnostic =
          "delivery time expired; last reply: " + (r ? r->reply.summary() : std::string("none"));
    } else {
      s.status = r && r->reply.enhanced ? r->reply.enhanced->str() : "5.0.0";
      s.diagnostic = r ? r->reply.summary() : std::string("550 5.0.0 failed");
    }
    in.recipients.push_back(std::move(s));
  };
  for (size_t i : failed) add(i, false);
  for (size_t i : expired) add(i, true);
  if (in.recipients.empty()) return stored(true);  // nobody asked to be told
  auto body = spool_.read_body(m.meta.id);
  if (body) in.original_body = *body;

  spool::MessageMeta dsn;
  dsn.id = spool_.next_id();
  dsn.received_ms = in.now_ms;
  dsn.next_due_ms = in.now_ms;
  dsn.sender = "";  // a DSN has the null sender: it never causes another DSN
  dsn.recipients.push_back(spool::Recipient{m.meta.sender, 0, "", ""});
  dsn.body_type = spool::BodyType::k8BitMime;
  dsn.smtputf8 = m.meta.smtputf8;
  dsn.helo = options_.hostname;
  spool::Body b;
  b.prefix = "Message-ID: <" + spool::format_id(dsn.id) + "@" + options_.hostname + ">\r\n";
  b.data = bounce::build_dsn(in);
  log_.write(JsonLine()
                 .timestamp()
                 .str("event", "DsnQueued")
                 .str("id", spool::format_id(dsn.id))
                 .str("for_id", spool::format_id(m.meta.id))
                 .str("recipient", m.meta.sender)
                 .unum("reported", in.recipients.size())
                 .finish());
  spool_.store(dsn, std::move(b), [this, dsn, stored = std::move(stored)](const Status& st) {
    spool_error_logger(dsn.id, "store DSN")(st);
    asio::post(strand_, [this, dsn, stored, ok = st.ok()] {
      if (ok) accept(dsn);
      stored(ok);
    });
  });
}

}  // namespace sluice::queue
