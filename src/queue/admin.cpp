// The operator's actions on the queue: suspensions and bounces by recipient domain, tenant and
// campaign, site and source; rebinding to another pool; limit overrides (the admin API's
// /api/admin/{suspend,bounce,rebind,limit}/v1; doc/http.md).
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <set>

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
          .str("site", r.site)
          .str("source", r.source)
          .str("tenant", r.tenant)
          .str("campaign", r.campaign)
          .str("pool", r.pool)
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
                               const std::vector<size_t>& rcpts, const std::string& site) {
  const int64_t now = now_ms();
  AdminRule* rule = admin_.match(m.meta, domain, now, site);
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
    record(m, *m.results[i], "", "", Where{domain, "", "", "", m.pool, ""}, "admin",
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
  auto jobs = dispatcher_->take_if([&](const outbound::Job& job, const std::string& site) {
    return !job.recipients.empty() &&
           rule.matches(*job.meta, domain_of(job.meta->recipients[job.recipients.front()].address),
                        site);
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
      record(m, *m.results[i], "", "", Where{ref.site, "", "", "", ref.pool, ""}, "admin",
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
          const std::string domain = domain_of(r.address);
          const SiteState* site = dispatcher_->site_of_domain(domain);
          if (rule.matches(*meta, domain, site ? site->name : std::string())) {
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

uint64_t Manager::rebind_sweep(const AdminRule& rule) {
  // Jobs already waiting go to the new pool's queue at their site now; the rest as they come.
  auto jobs = dispatcher_->take_if([&](const outbound::Job& job, const std::string& site) {
    return !job.recipients.empty() &&
           rule.matches(*job.meta, domain_of(job.meta->recipients[job.recipients.front()].address),
                        site);
  });
  uint64_t moved = 0;
  std::set<std::string> sites;
  for (auto& [ref, job] : jobs) {
    SiteState* site = dispatcher_->site(ref.site);
    moved += job.recipients.size();
    dispatcher_->add(*site, rule.pool, ref.message, std::move(job));
    sites.insert(ref.site);
  }
  for (const std::string& name : sites) dispatcher_->open(*dispatcher_->site(name), rule.pool);
  return moved;
}

namespace {

// The body's string field ("" when absent or not a string).
std::string text_of(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// "[…]": each item as to_json makes it.
template <class Items, class ToJson>
std::string json_list(const Items& items, ToJson to_json) {
  std::string out = "[";
  for (const auto& item : items) {
    if (out.size() > 1) out.push_back(',');
    out += to_json(item);
  }
  return out + "]";
}

// The request's body as a JSON object; nullopt, with 400 answered, when it is not one.
std::optional<json::object> object_body(const std::string& body,
                                        const std::function<void(int, std::string)>& done) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    done(400, error_body("the body must be a JSON object"));
    return std::nullopt;
  }
  return std::move(doc.as_object());
}

std::optional<uint64_t> id_of(const json::object& o) {
  const json::value* id = o.if_contains("id");
  if (id && id->is_uint64()) return id->as_uint64();
  if (id && id->is_int64() && id->as_int64() > 0) return static_cast<uint64_t>(id->as_int64());
  return std::nullopt;
}

std::string answer(const JsonLine& line) { return JsonLine(line).object(); }

// "1h" by default; the duration's error message otherwise.
std::optional<int64_t> duration_of(const json::object& o, const char* fallback) {
  const std::string d = text_of(o, "duration");
  auto parsed = config::parse_duration(d.empty() ? fallback : d);
  if (!parsed || parsed->count() <= 0) return std::nullopt;
  return parsed->count();
}

std::string override_json(const LimitOverride& o, int64_t now) {
  JsonLine j;
  j.unum("id", o.id).str("provider", o.provider).str("site", o.site).str("source", o.source);
  if (o.limits.connection_limit) j.unum("connection_limit", *o.limits.connection_limit);
  if (o.limits.max_message_rate)
    j.str("message_rate", std::to_string(o.limits.max_message_rate->count) + "/" +
                              config::format_duration(o.limits.max_message_rate->per));
  if (o.limits.max_deliveries_per_connection)
    j.unum("max_deliveries_per_connection", *o.limits.max_deliveries_per_connection);
  if (o.limits.adaptive) j.boolean("adaptive", *o.limits.adaptive);
  j.str("reason", o.reason)
      .str("duration", config::format_duration(config::Duration(std::max<int64_t>(0, o.until_ms - now))))
      .str("until", iso(o.until_ms));
  return answer(j);
}

}  // namespace

void Manager::reload(config::QueueConfig queue, config::ShapingConfig shaping) {
  asio::post(strand_, [this, queue = std::move(queue), shaping = std::move(shaping)]() mutable {
    options_.queue = std::move(queue);
    options_.shaping = shaping;
    dispatcher_->set_shaping(std::move(shaping));
    arm_timer();  // hold may have been lifted, or due times moved
  });
}

void Manager::limit_request(const std::string& method, const std::string& body,
                            const std::function<void(int, std::string)>& done) {
  const int64_t now = now_ms();
  if (method == "GET") {
    return done(200, json_list(dispatcher_->overrides(),
                               [&](const LimitOverride& o) { return override_json(o, now); }));
  }
  const auto parsed = object_body(body, done);
  if (!parsed) return;
  const json::object& o = *parsed;
  if (method == "DELETE") {
    auto id = id_of(o);
    auto removed = id ? dispatcher_->remove_override(*id) : std::nullopt;
    if (!removed) return done(404, error_body("no limit override with that id"));
    log_.write(JsonLine().timestamp().str("event", "AdminAction").str("action", "cancel limit")
                   .unum("id", removed->id).finish());
    return done(200, answer(JsonLine().unum("id", removed->id)));
  }
  if (method != "POST") return done(405, error_body("GET, POST or DELETE"));
  LimitOverride lo;
  lo.provider = text_of(o, "provider");
  lo.site = text_of(o, "site");
  lo.source = text_of(o, "source");
  lo.reason = text_of(o, "reason");
  if (lo.provider.empty() && lo.site.empty() && lo.source.empty())
    return done(422, error_body("give at least one of provider, site, source"));
  if (!lo.source.empty() && !options_.egress.sources.count(lo.source))
    return done(422, error_body("no source " + lo.source));
  if (lo.reason.empty()) return done(422, error_body("reason is required"));
  auto count = [&](const char* key, std::optional<uint32_t>& out) -> bool {
    const json::value* v = o.if_contains(key);
    if (!v) return true;
    const int64_t n = v->is_int64() ? v->as_int64() : v->is_uint64() ? static_cast<int64_t>(v->as_uint64()) : 0;
    if (n < 1 || n > 100000) return false;
    out = static_cast<uint32_t>(n);
    return true;
  };
  if (!count("connection_limit", lo.limits.connection_limit))
    return done(422, error_body("connection_limit: a whole number 1..100000"));
  if (!count("max_deliveries_per_connection", lo.limits.max_deliveries_per_connection))
    return done(422, error_body("max_deliveries_per_connection: a whole number 1..100000"));
  if (const std::string rate = text_of(o, "message_rate"); !rate.empty()) {
    config::Rate r;
    if (auto err = config::parse_rate(rate, r)) return done(422, error_body("message_rate: " + *err));
    lo.limits.max_message_rate = r;
  }
  if (const json::value* a = o.if_contains("adaptive")) {
    if (!a->is_bool()) return done(422, error_body("adaptive: true or false"));
    lo.limits.adaptive = a->as_bool();
  }
  if (!lo.limits.connection_limit && !lo.limits.max_deliveries_per_connection &&
      !lo.limits.max_message_rate && !lo.limits.adaptive)
    return done(422, error_body("give at least one of connection_limit, message_rate, "
                                "max_deliveries_per_connection, adaptive"));
  auto length = duration_of(o, "1h");
  if (!length) return done(422, error_body("duration: expected \"30m\", \"1h\", \"2d\"…"));
  lo.until_ms = now + *length;
  const size_t lanes = dispatcher_->add_override(lo);
  log_.write(JsonLine().timestamp().str("event", "AdminAction").str("action", "limit")
                 .unum("id", lo.id).str("provider", lo.provider).str("site", lo.site)
                 .str("source", lo.source).raw("limits", override_json(lo, now))
                 .str("reason", lo.reason).str("until", iso(lo.until_ms)).unum("lanes", lanes)
                 .finish());
  done(200, answer(JsonLine().unum("id", lo.id).unum("lanes", lanes)));
}

void Manager::admin_request(std::string method, std::string what, std::string body,
                            std::function<void(int, std::string)> done) {
  asio::post(strand_, [this, method = std::move(method), what = std::move(what),
                       body = std::move(body), done = std::move(done)] {
    if (what == "limit") return limit_request(method, body, done);
    const AdminRule::Kind kind = what == "bounce"   ? AdminRule::Kind::kBounce
                                 : what == "rebind" ? AdminRule::Kind::kRebind
                                                    : AdminRule::Kind::kSuspend;
    const int64_t now = now_ms();
    if (method == "GET") {
      return done(200, json_list(admin_.list(kind, now),
                                 [&](const AdminRule& r) { return rule_json(r, now); }));
    }
    const auto parsed = object_body(body, done);
    if (!parsed) return;
    const json::object& o = *parsed;
    if (method == "DELETE") {
      auto id = id_of(o);
      auto removed = id ? admin_.remove(*id) : std::nullopt;
      if (!removed || removed->kind != kind)
        return done(404, error_body("no " + what + " with that id"));
      uint64_t released = 0;
      if (!removed->source.empty())
        released = dispatcher_->suspend_source(removed->source, 0, "");
      else if (kind == AdminRule::Kind::kSuspend)
        released = release(*removed);
      log_.write(JsonLine().timestamp().str("event", "AdminAction").str("action", "cancel " + what)
                     .unum("id", removed->id).unum("released", released).finish());
      return done(200, answer(JsonLine().unum("id", removed->id).unum("released", released)));
    }
    if (method != "POST") return done(405, error_body("GET, POST or DELETE"));
    AdminRule rule;
    rule.kind = kind;
    rule.domain = to_lower(text_of(o, "domain"));
    rule.site = text_of(o, "site");
    rule.source = text_of(o, "source");
    rule.tenant = text_of(o, "tenant");
    rule.campaign = text_of(o, "campaign");
    rule.pool = text_of(o, "pool");
    rule.reason = text_of(o, "reason");
    if (rule.reason.empty()) return done(422, error_body("reason is required"));
    if (!rule.source.empty()) {
      if (kind != AdminRule::Kind::kSuspend)
        return done(422, error_body("source selects a source's connections: suspend only"));
      if (!rule.domain.empty() || !rule.site.empty() || !rule.tenant.empty() || !rule.campaign.empty())
        return done(422, error_body("source stands alone: its lanes stop, whatever the mail"));
      if (!options_.egress.sources.count(rule.source))
        return done(422, error_body("no source " + rule.source));
    }
    if (kind == AdminRule::Kind::kRebind && !options_.egress.pools.count(rule.pool))
      return done(422, error_body(rule.pool.empty() ? "pool is required" : "no pool " + rule.pool));
    auto length = duration_of(o, kind == AdminRule::Kind::kBounce ? "5m" : "1h");
    if (!length) return done(422, error_body("duration: expected \"30m\", \"1h\", \"2d\"…"));
    rule.created_ms = now;
    rule.until_ms = now + *length;
    auto id = admin_.add(rule);
    if (!id) return done(422, error_body("give at least one of domain, site, source, tenant, campaign"));
    rule.id = *id;
    uint64_t taken = 0;
    if (!rule.source.empty())
      taken = dispatcher_->suspend_source(rule.source, rule.until_ms,
                                          "suspended by the operator: " + rule.reason);
    else if (kind == AdminRule::Kind::kRebind)
      taken = rebind_sweep(rule);
    else
      taken = sweep(rule);
    log_.write(JsonLine()
                   .timestamp()
                   .str("event", "AdminAction")
                   .str("action", what)
                   .unum("id", rule.id)
                   .str("domain", rule.domain)
                   .str("site", rule.site)
                   .str("source", rule.source)
                   .str("tenant", rule.tenant)
                   .str("campaign", rule.campaign)
                   .str("pool", rule.pool)
                   .str("reason", rule.reason)
                   .str("until", iso(rule.until_ms))
                   .unum("affected", taken)
                   .finish());
    JsonLine out;
    out.unum("id", rule.id);
    if (!rule.source.empty()) out.unum("lanes", taken);
    else if (kind == AdminRule::Kind::kBounce) out.unum("total_bounced", taken);
    else if (kind == AdminRule::Kind::kRebind) out.unum("moved", taken);
    else out.unum("held", taken);
    done(200, answer(out));
  });
}

}  // namespace sluice::queue
