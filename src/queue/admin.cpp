// The operator's actions on the queue: suspensions and bounces by recipient domain, tenant and
// campaign (the admin API's /api/admin/suspend/v1 and /api/admin/bounce/v1; doc/http.md).
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "config/units.h"
#include "core/json.h"
#include "core/text.h"
#include "observe/event_log.h"
#include "queue/dispatcher.h"
#include "queue/in_flight.h"
#include "spool/spool.h"

namespace sluice::queue {
namespace asio = boost::asio;
namespace json = boost::json;
using outbound::Outcome;
using outbound::RecipientResult;

namespace {

std::string domain_of(const std::string& address) {
  const size_t at = address.rfind('@');
  return at == std::string::npos ? std::string() : to_lower(address.substr(at + 1));
}

std::string error_body(std::string_view message) {
  std::string out = JsonLine().str("error", message).finish();
  out.pop_back();
  return out;
}

std::string iso(int64_t ms) {
  const std::time_t secs = ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string rule_json(const AdminRule& r, int64_t now) {
  std::string out =
      JsonLine()
          .unum("id", r.id)
          .str("domain", r.domain)
          .str("tenant", r.tenant)
          .str("campaign", r.campaign)
          .str("reason", r.reason)
          .str("duration", config::format_duration(
                               config::Duration(std::max<int64_t>(0, r.until_ms - now))))
          .str("until", iso(r.until_ms))
          .unum("affected", r.affected)
          .finish();
  out.pop_back();
  return out;
}

}  // namespace

bool Manager::apply_admin_rule(InFlight& m, const std::string& domain,
                               const std::vector<size_t>& rcpts) {
  const int64_t now = now_ms();
  AdminRule* rule = admin_.match(m.meta, domain, now);
  if (!rule) return false;
  const bool bounce = rule->kind == AdminRule::Kind::kBounce;
  const std::string text = bounce ? "bounced by the operator: " + rule->reason
                                  : "suspended by the operator until " + iso(rule->until_ms) +
                                        ": " + rule->reason;
  for (size_t i : rcpts) {
    m.results[i] = RecipientResult{i, bounce ? Outcome::kPermanent : Outcome::kTransient,
                                   outbound::Stage::kConnect,
                                   smtp::Reply::make(bounce ? 550 : 451, bounce ? "5.7.1" : "4.7.0",
                                                     "sluice: " + text)};
    if (!bounce) defer(m, i, rule->until_ms);
    record(m, *m.results[i], "", "", Where{domain, "", "", "", m.pool}, "admin",
           bounce ? "admin-bounce" : "admin-suspend", bounce);
    ++rule->affected;
  }
  return true;
}

uint64_t Manager::sweep(const AdminRule& rule) {
  const bool bounce = rule.kind == AdminRule::Kind::kBounce;
  const std::string why = (bounce ? "bounced by the operator: " : "suspended by the operator: ") +
                          rule.reason;
  uint64_t taken = 0;
  // Jobs waiting in ready queues.
  auto jobs = dispatcher_->take_if([&](const outbound::Job& job) {
    return !job.recipients.empty() &&
           rule.matches(*job.meta, domain_of(job.meta->recipients[job.recipients.front()].address));
  });
  for (auto& [ref, job] : jobs) {
    taken += job.recipients.size();
    if (!bounce) {
      on_parked(ref, job, rule.until_ms, why);
      continue;
    }
    auto it = in_flight_.find(ref.message);
    if (it == in_flight_.end()) continue;
    InFlight& m = *it->second;
    for (size_t i : job.recipients) {
      m.results[i] = RecipientResult{i, Outcome::kPermanent, outbound::Stage::kConnect,
                                     smtp::Reply::make(550, "5.7.1", "sluice: " + why)};
      record(m, *m.results[i], "", "", Where{ref.site, "", "", "", ref.pool}, "admin",
             "admin-bounce", true);
    }
    if (--m.outstanding == 0) settle(ref.message);
  }
  if (!bounce) return taken;
  // A bounce also takes what waits in the scheduled queue: each message is read back, and
  // those it selects come to work now (where the rule bounces them); the rest go back.
  const int64_t now = now_ms();
  for (const auto& e : queue_.drain()) {
    auto meta = spool_.read_meta(e.id);
    if (!meta) continue;  // gone meanwhile
    bool selected = false;
    for (const auto& r : meta->recipients) selected = selected || rule.matches(*meta, domain_of(r.address));
    if (selected && !in_flight_.count(e.id)) {
      for (const auto& r : meta->recipients) taken += rule.matches(*meta, domain_of(r.address));
      meta->next_due_ms = now;
      start(std::move(*meta));
    } else {
      queue_.push(e.tenant, e.due_ms, e.id);
    }
  }
  scheduled_count_ = queue_.size();
  arm_timer();
  return taken;
}

uint64_t Manager::release(const AdminRule& rule) {
  // Messages the suspension held wait in the scheduled queue for its end: due now instead.
  uint64_t released = 0;
  const int64_t now = now_ms();
  for (const auto& e : queue_.drain()) {
    int64_t due = e.due_ms;
    if (due > now) {
      if (auto meta = spool_.read_meta(e.id)) {
        for (const auto& r : meta->recipients) {
          if (rule.matches(*meta, domain_of(r.address))) {
            due = now;
            ++released;
            break;
          }
        }
      }
    }
    queue_.push(e.tenant, due, e.id);
  }
  scheduled_count_ = queue_.size();
  asio::post(strand_, [this] { pull_due(); });
  return released;
}

void Manager::admin_request(std::string method, std::string what, std::string body,
                            std::function<void(int, std::string)> done) {
  asio::post(strand_, [this, method = std::move(method), what = std::move(what),
                       body = std::move(body), done = std::move(done)] {
    const AdminRule::Kind kind =
        what == "bounce" ? AdminRule::Kind::kBounce : AdminRule::Kind::kSuspend;
    const int64_t now = now_ms();
    if (method == "GET") {
      std::string out = "[";
      for (const auto& r : admin_.list(kind, now)) {
        if (out.size() > 1) out.push_back(',');
        out += rule_json(r, now);
      }
      return done(200, out + "]");
    }
    boost::system::error_code ec;
    const json::value doc = json::parse(body, ec);
    if (ec || !doc.is_object()) return done(400, error_body("the body must be a JSON object"));
    const json::object& o = doc.as_object();
    auto text = [&](const char* key) {
      const json::value* v = o.if_contains(key);
      return v && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    if (method == "DELETE") {
      const json::value* id = o.if_contains("id");
      const auto n = id && id->is_int64() ? id->as_int64() : id && id->is_uint64() ? static_cast<int64_t>(id->as_uint64()) : -1;
      auto removed = n > 0 ? admin_.remove(static_cast<uint64_t>(n)) : std::nullopt;
      if (!removed || removed->kind != kind)
        return done(404, error_body("no " + what + " with that id"));
      const uint64_t released = kind == AdminRule::Kind::kSuspend ? release(*removed) : 0;
      log_.write(JsonLine().timestamp().str("event", "AdminAction").str("action", "cancel " + what)
                     .unum("id", removed->id).unum("released", released).finish());
      std::string out = JsonLine().unum("id", removed->id).unum("released", released).finish();
      out.pop_back();
      return done(200, out);
    }
    if (method != "POST") return done(405, error_body("GET, POST or DELETE"));
    AdminRule rule;
    rule.kind = kind;
    rule.domain = to_lower(text("domain"));
    rule.tenant = text("tenant");
    rule.campaign = text("campaign");
    rule.reason = text("reason");
    if (rule.reason.empty()) return done(422, error_body("reason is required"));
    const std::string duration = text("duration");
    auto d = config::parse_duration(duration.empty() ? (kind == AdminRule::Kind::kSuspend ? "1h" : "5m")
                                                     : duration);
    if (!d) return done(422, error_body("duration: expected \"30m\", \"1h\", \"2d\"…"));
    rule.created_ms = now;
    rule.until_ms = now + d->count();
    auto id = admin_.add(rule);
    if (!id) return done(422, error_body("give at least one of domain, tenant, campaign"));
    rule.id = *id;
    const uint64_t taken = sweep(rule);
    log_.write(JsonLine()
                   .timestamp()
                   .str("event", "AdminAction")
                   .str("action", what)
                   .unum("id", rule.id)
                   .str("domain", rule.domain)
                   .str("tenant", rule.tenant)
                   .str("campaign", rule.campaign)
                   .str("reason", rule.reason)
                   .str("until", iso(rule.until_ms))
                   .unum("affected", taken)
                   .finish());
    JsonLine out;
    out.unum("id", rule.id);
    if (kind == AdminRule::Kind::kBounce) out.unum("total_bounced", taken);
    else out.unum("held", taken);
    std::string s = out.finish();
    s.pop_back();
    done(200, s);
  });
}

}  // namespace sluice::queue
