#include "app/queue_cmd.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <sys/socket.h>
#include <sys/time.h>

#include "config/config.h"

namespace sluice {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

struct Fetched {
  int status = 0;  // 0: no answer (error says why)
  std::string body, error;
};

Fetched request(const config::Endpoint& ep, bhttp::verb verb, const std::string& target,
                const std::string& token, const std::string& body = {}) {
  Fetched f;
  try {
    boost::asio::io_context ioc;
    boost::beast::tcp_stream stream(ioc);
    boost::asio::ip::tcp::resolver resolver(ioc);
    stream.connect(resolver.resolve(ep.host, std::to_string(ep.port)));
    // Synchronous reads and writes ignore the stream's expiry: bound them in the kernel.
    const timeval tv{10, 0};
    const int fd = stream.socket().native_handle();
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    bhttp::request<bhttp::string_body> req{verb, target, 11};
    req.set(bhttp::field::host, ep.str());
    if (!body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    req.set(bhttp::field::user_agent, "sluice-queue");
    if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
    bhttp::write(stream, req);
    boost::beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buf, res);
    f.status = static_cast<int>(res.result_int());
    f.body = std::move(res.body());
  } catch (const boost::system::system_error& e) {
    f.error = e.code().message();  // what() carries Asio's source location
  } catch (const std::exception& e) {
    f.error = e.what();
  }
  return f;
}

// The admin endpoint (and its token) from --http/--token or the config; false (printed why)
// when neither works.
bool endpoint(const QueueOptions& o, config::Endpoint& ep, std::string& token) {
  token = o.token;
  if (!o.http.empty()) {
    if (auto e = config::parse_endpoint(o.http, ep)) {
      std::fprintf(stderr, "sluice queue: --http: %s\n", e->c_str());
      return false;
    }
    return true;
  }
  auto cfg = config::load_config_file(o.config_path);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::fprintf(stderr, "sluice: %s\n", e.str().c_str());
    return false;
  }
  ep = cfg->http.listen;
  if (token.empty()) token = cfg->http.api_token;
  return true;
}

// GETs target and parses its JSON. With --json the body is printed as it came. Returns nullopt
// when there is nothing more to do; `rc` is then the exit code (0 after --json, 1 on failure,
// with the reason printed; `missing` is what a 404 means).
std::optional<json::value> fetch_json(const QueueOptions& o, const std::string& target,
                                      const std::string& missing, int& rc,
                                      bhttp::verb verb = bhttp::verb::get,
                                      const std::string& body = {}) {
  rc = 1;
  config::Endpoint ep;
  std::string token;
  if (!endpoint(o, ep, token)) return std::nullopt;
  Fetched f = request(ep, verb, target, token, body);
  if (f.status == 0) {
    std::fprintf(stderr, "sluice queue: no answer from the admin API at http://%s%s: %s (is "
                 "sluice serve running with this [http] listen?)\n",
                 ep.str().c_str(), target.c_str(), f.error.c_str());
    return std::nullopt;
  }
  if (f.status == 404 && !missing.empty()) {
    std::fprintf(stderr, "sluice queue: %s\n", missing.c_str());
    return std::nullopt;
  }
  if (f.status != 200) {
    std::fprintf(stderr, "sluice queue: HTTP %d: %s", f.status, f.body.c_str());
    return std::nullopt;
  }
  if (o.json) {
    std::fputs(f.body.c_str(), stdout);
    rc = 0;
    return std::nullopt;
  }
  try {
    return json::parse(f.body);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice queue: the admin API answered something else than JSON: %s\n",
                 e.what());
    return std::nullopt;
  }
}

std::string str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v) return "";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  return json::serialize(*v);
}

std::string rate(const json::object& o, const char* key) {
  const std::string per_hour = str(o, key);
  if (per_hour.empty() || per_hour == "0") return "-";
  const double r = std::stod(per_hour) / 3600.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, r >= 10 ? "%.0f/s" : "%.2f/s", r);
  return buf;
}

}  // namespace

int queue_sites(const QueueOptions& o) {
  int rc = 0;
  auto fetched = fetch_json(o, "/api/v1/sites", "", rc);
  if (!fetched) return rc;
  const json::value& doc = *fetched;
  if (!doc.is_array() || doc.as_array().empty()) {
    std::printf("no sites yet (nothing has been delivered or tried since the server started)\n");
    return 0;
  }
  std::printf("%-10s %-34s %-10s %6s %7s %8s %7s %9s %9s %-9s %s\n", "SOURCE", "SITE",
              "PROVIDER", "OPEN", "LIMIT", "MAX", "READY", "RATE", "DELIVERED", "STATE",
              "LAST SIGNAL");
  for (const auto& v : doc.as_array()) {
    if (!v.is_object()) continue;
    const auto& s = v.as_object();
    std::string site = str(s, "site");
    if (site.size() > 34) site = site.substr(0, 31) + "...";
    std::string state = str(s, "suspended") == "yes" ? "suspended"
                        : str(s, "held") == "yes"     ? "held"
                        : str(s, "slow_start") == "yes" ? "slow-start"
                        : str(s, "adaptive") == "yes"   ? "learning"
                                                        : "fixed";
    const std::string limit = str(s, "connection_limit");
    const std::string max = str(s, "configured_connection_limit");
    std::string signal = str(s, "last_signal");
    if (!signal.empty()) signal = "[" + str(s, "last_category") + "] " + signal;
    std::printf("%-10s %-34s %-10s %6s %7s %8s %7s %9s %9s %-9s %s\n", str(s, "source").c_str(),
                site.c_str(),
                str(s, "provider").empty() ? "-" : str(s, "provider").c_str(),
                str(s, "open_connections").c_str(), limit.c_str(), max.c_str(),
                str(s, "ready").c_str(), rate(s, "message_rate_per_hour").c_str(),
                str(s, "delivered").c_str(), state.c_str(), signal.c_str());
    if (state == "suspended")
      std::printf("%45s suspended until %s: %s\n", "", str(s, "suspended_until").c_str(),
                  str(s, "suspend_reason").c_str());
  }
  return 0;
}

int queue_rule(const QueueOptions& o, const RuleOptions& r) {
  int rc = 0;
  const std::string target = "/api/admin/" + r.kind + "/v1";
  if (r.cancel) {
    auto fetched = fetch_json(o, target, "no " + r.kind + " " + std::to_string(r.id), rc,
                              bhttp::verb::delete_, json::serialize(json::object{{"id", r.id}}));
    if (!fetched) return rc;
    std::printf("%s %llu cancelled", r.kind.c_str(), static_cast<unsigned long long>(r.id));
    if (fetched->as_object().contains("released"))
      std::printf("; %s released", str(fetched->as_object(), "released").c_str());
    std::printf("\n");
    return 0;
  }
  const bool limit = r.kind == "limit";
  if (r.domain.empty() && r.site.empty() && r.source.empty() && r.tenant.empty() &&
      r.campaign.empty() && r.provider.empty()) {
    // No selector: list the rules in force.
    auto fetched = fetch_json(o, target, "", rc);
    if (!fetched) return rc;
    if (o.json) {
      std::printf("%s\n", json::serialize(*fetched).c_str());
      return 0;
    }
    if (!fetched->is_array() || fetched->as_array().empty()) {
      std::printf("no %s in force\n", r.kind.c_str());
      return 0;
    }
    for (const auto& v : fetched->as_array()) {
      const auto& e = v.as_object();
      std::string selectors;
      for (const char* key : {"provider", "domain", "site", "source", "tenant", "campaign"}) {
        if (!str(e, key).empty()) selectors += std::string(selectors.empty() ? "" : " ") + key + "=" + str(e, key);
      }
      std::string what;
      if (r.kind == "rebind") what = " → pool " + str(e, "pool");
      for (const char* key : {"connection_limit", "message_rate", "max_deliveries_per_connection", "adaptive"}) {
        if (e.contains(key)) what += std::string(" ") + key + "=" + str(e, key);
      }
      std::printf("%4s  %s%s  for %s  (%s)%s\n", str(e, "id").c_str(), selectors.c_str(),
                  what.c_str(), str(e, "duration").c_str(), str(e, "reason").c_str(),
                  e.contains("affected") ? (", " + str(e, "affected") + " affected").c_str() : "");
    }
    return 0;
  }
  json::object body{{"reason", r.reason}};
  auto put = [&](const char* key, const std::string& v) {
    if (!v.empty()) body[key] = v;
  };
  put("domain", r.domain);
  put("site", r.site);
  put("source", r.source);
  put("tenant", r.tenant);
  put("campaign", r.campaign);
  put("provider", r.provider);
  put("pool", r.pool);
  put("duration", r.duration);
  put("message_rate", r.message_rate);
  if (r.connection_limit) body["connection_limit"] = r.connection_limit;
  if (r.max_deliveries) body["max_deliveries_per_connection"] = r.max_deliveries;
  auto fetched = fetch_json(o, target, "", rc, bhttp::verb::post, json::serialize(body));
  if (!fetched) return rc;
  const auto& a = fetched->as_object();
  if (o.json) {
    std::printf("%s\n", json::serialize(a).c_str());
  } else if (limit || a.contains("lanes")) {
    std::printf("%s %s: %s lanes changed now\n", r.kind.c_str(), str(a, "id").c_str(),
                str(a, "lanes").c_str());
  } else {
    const char* key = r.kind == "bounce" ? "total_bounced" : r.kind == "rebind" ? "moved" : "held";
    std::printf("%s %s: %s recipients taken now\n", r.kind.c_str(), str(a, "id").c_str(),
                str(a, key).c_str());
  }
  return 0;
}

int queue_summary(const QueueOptions& o, const std::string& by) {
  int rc = 0;
  auto fetched = fetch_json(o, "/api/v1/queue?by=" + by, "", rc);
  if (!fetched) return rc;
  if (o.json) {
    std::printf("%s\n", json::serialize(*fetched).c_str());
    return 0;
  }
  const auto& doc = fetched->as_object();
  std::printf("%s messages in flight, %s scheduled", str(doc, "in_flight").c_str(),
              str(doc, "scheduled").c_str());
  if (str(doc, "scheduled_not_read") != "0")
    std::printf(" (%s scheduled not read)", str(doc, "scheduled_not_read").c_str());
  std::printf("\n%-40s %10s %10s %10s %10s\n", by.c_str(), "MESSAGES", "RECIPIENTS", "IN FLIGHT",
              "SCHEDULED");
  const json::value* groups = doc.if_contains("groups");
  if (!groups || !groups->is_array()) return 0;
  for (const auto& v : groups->as_array()) {
    const auto& g = v.as_object();
    const std::string name = str(g, "name");
    std::printf("%-40s %10s %10s %10s %10s\n", name.empty() ? "(none)" : name.c_str(),
                str(g, "messages").c_str(), str(g, "recipients").c_str(),
                str(g, "in_flight").c_str(), str(g, "scheduled").c_str());
  }
  return 0;
}

int queue_sources(const QueueOptions& o) {
  int rc = 0;
  auto fetched = fetch_json(o, "/api/v1/sources", "", rc);
  if (!fetched) return rc;
  const json::value& doc = *fetched;
  if (!doc.is_array()) return 0;
  for (const auto& v : doc.as_array()) {
    if (!v.is_object()) continue;
    const auto& s = v.as_object();
    std::string address = str(s, "address");
    std::printf("%s  %s  ehlo %s  pools %s\n", str(s, "source").c_str(),
                address.empty() ? "(system's address)" : address.c_str(), str(s, "ehlo").c_str(),
                str(s, "pools").c_str());
    if (!str(s, "warmup").empty()) {
      std::printf("  warm-up \"%s\" day %s (since %s)%s\n", str(s, "warmup").c_str(),
                  str(s, "warmup_day").c_str(), str(s, "warmup_start").c_str(),
                  str(s, "warmed_up") == "yes" ? ", warmed up" : "");
      const json::value* counts = s.if_contains("warmup_counts");
      if (counts && counts->is_array()) {
        std::printf("    %-12s %10s %10s %10s %10s\n", "PROVIDER", "TODAY", "DAY CAP", "THIS HOUR",
                    "HOUR CAP");
        for (const auto& c : counts->as_array()) {
          if (!c.is_object()) continue;
          const auto& co = c.as_object();
          auto cap = [&](const char* key) {
            const std::string x = str(co, key);
            return x == "0" ? std::string("none") : x;
          };
          std::printf("    %-12s %10s %10s %10s %10s\n",
                      str(co, "provider").empty() ? "(others)" : str(co, "provider").c_str(),
                      str(co, "today").c_str(), cap("daily_cap").c_str(),
                      str(co, "this_hour").c_str(), cap("hourly_cap").c_str());
        }
      }
    } else {
      std::printf("  established (no warm-up)\n");
    }
    const json::value* lanes = s.if_contains("lanes");
    if (lanes && lanes->is_array() && !lanes->as_array().empty()) {
      std::printf("    %-34s %-10s %6s %7s %8s %9s %s\n", "SITE", "PROVIDER", "OPEN", "LIMIT",
                  "LEARNED", "DELIVERED", "STATE");
      for (const auto& l : lanes->as_array()) {
        if (!l.is_object()) continue;
        const auto& lo = l.as_object();
        std::string site = str(lo, "site");
        if (site.size() > 34) site = site.substr(0, 31) + "...";
        const std::string learned = str(lo, "learned_connection_limit");
        std::printf("    %-34s %-10s %6s %7s %8s %9s %s\n", site.c_str(),
                    str(lo, "provider").empty() ? "-" : str(lo, "provider").c_str(),
                    str(lo, "open_connections").c_str(), str(lo, "connection_limit").c_str(),
                    learned == "0" ? "-" : learned.c_str(), str(lo, "delivered").c_str(),
                    str(lo, "suspended") == "yes" ? "suspended" : "");
      }
    }
  }
  return 0;
}

int queue_explain(const QueueOptions& o, const std::string& id) {
  int rc = 0;
  auto fetched = fetch_json(o, "/api/v1/messages/" + id,
                            "no message " + id +
                                " in the queue (delivered, bounced, or never accepted)",
                            rc);
  if (!fetched) return rc;
  if (!fetched->is_object()) return 1;
  const auto& m = fetched->as_object();
  auto when = [](const std::string& ms) {
    if (ms.empty()) return std::string("-");
    const std::time_t t = std::stoll(ms) / 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return std::string(buf);
  };
  std::printf("message   %s\n", str(m, "id").c_str());
  std::printf("from      <%s>\n", str(m, "sender").c_str());
  std::printf("to        %s\n", str(m, "recipients").c_str());
  std::printf("size      %s octets\n", str(m, "size").c_str());
  std::printf("received  %s\n", when(str(m, "received_ms")).c_str());
  std::printf("attempts  %s (throttle signals are not counted)\n", str(m, "attempts").c_str());
  const json::value* q = m.if_contains("queue");
  const json::object* qo = q && q->is_object() ? &q->as_object() : nullptr;
  if (qo && str(*qo, "state") == "in-flight") {
    std::printf("state     being delivered: %s job(s) outstanding at %s\n",
                str(*qo, "outstanding").c_str(), str(*qo, "job_sites").c_str());
  } else {
    std::printf("state     scheduled; next attempt %s\n", when(str(m, "next_due_ms")).c_str());
  }
  const json::value* ds = qo ? qo->if_contains("domains") : nullptr;
  if (ds && ds->is_array()) {
    for (const auto& v : ds->as_array()) {
      if (!v.is_object()) continue;
      const auto& d = v.as_object();
      if (str(d, "site").empty()) {
        std::printf("domain    %s: no site being delivered to (resolved when it is due)\n",
                    str(d, "domain").c_str());
        continue;
      }
      std::string state = str(d, "suspended") == "yes"
                              ? "SUSPENDED until " + str(d, "suspended_until")
                          : str(d, "held") == "yes" ? std::string("held after a refusal")
                                                    : "open";
      std::printf("domain    %s -> %s (%s): %s, %s/%s connections, %s ready\n",
                  str(d, "domain").c_str(), str(d, "site").c_str(),
                  str(d, "provider").empty() ? "-" : str(d, "provider").c_str(), state.c_str(),
                  str(d, "open_connections").c_str(), str(d, "connection_limit").c_str(),
                  str(d, "ready").c_str());
      if (!str(d, "last_signal").empty())
        std::printf("          last signal [%s] %s\n", str(d, "last_category").c_str(),
                    str(d, "last_signal").c_str());
    }
  }
  std::printf("(sites and their limits: sluice queue sites)\n");
  return 0;
}

}  // namespace sluice
