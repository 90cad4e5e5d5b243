#include "app/server.h"

#include <sys/resource.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "app/version.h"
#include "core/json.h"
#include "dns/resolver.h"
#include "http/admin.h"
#include "inbound/auth_throttle.h"
#include "inbound/credentials.h"
#include "inbound/listener.h"
#include "net/tls.h"
#include "observe/event_log.h"
#include "observe/metrics.h"
#include "observe/recent_replies.h"
#include "dkim/signer.h"
#include "inbound/injector.h"
#include "queue/manager.h"
#include "spool/rocks_spool.h"
#include "tlspolicy/policy_resolver.h"

namespace sluice {
namespace asio = boost::asio;

namespace {

// Lifecycle records go to stderr as JSON lines: what an operator or a supervisor watches.
void lifecycle(JsonLine line) {
  const std::string s = line.finish();
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

// Whether any delivery path verifies certificates ([delivery], a route, [tls]: MTA-STS, DANE
// or a provider's or domain's policy).
bool uses_verify(const config::Config& cfg) {
  if (cfg.delivery.tls == config::TlsPolicy::kVerify) return true;
  if (tlspolicy::PolicyResolver::needed(cfg.tls)) return true;
  for (const auto& [domain, r] : cfg.routes)
    if (r.tls == config::TlsPolicy::kVerify) return true;
  return false;
}

JsonLine event(const char* name) {
  JsonLine l;
  l.timestamp().str("event", name);
  return l;
}

}  // namespace

struct Server::Impl {
  explicit Impl(config::Config c)
      : cfg(std::move(c)),
        threads(cfg.server.threads ? cfg.server.threads
                                   : std::max(1u, std::thread::hardware_concurrency())),
        ioc(static_cast<int>(threads)),
        control(asio::make_strand(ioc)),
        work(asio::make_work_guard(ioc)),
        signals(control, SIGTERM, SIGINT, SIGHUP),
        deadline(control),
        blocking(1) {}

  // Opens the spool, the log, TLS and credentials; recovers the spool; starts the listener.
  Status start();

  void wait_for_signal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        // logrotate moved the log: the next records go to a new file at its path.
        if (log) log->reopen();
        lifecycle(event("LogReopened").str("path", cfg.log.path));
        if (!stopping) reload();
        return wait_for_signal();
      }
      if (stopping) {
        lifecycle(event("ShutdownForced").num("signal", signo));
        ioc.stop();
        return;
      }
      begin_shutdown(signo);
    });
  }

  // SIGHUP: the configuration again from its file. One with errors is refused, each error
  // named with its line, and the running configuration stays; a good one applies [queue] and
  // [shaping] at once (every lane's limits, the next retry times) and names the changed
  // sections that take effect only after a restart. Both outcomes are lifecycle records on
  // stderr and ConfigReload records in the event log.
  void reload() {
    auto loaded = config::load_config_file(cfg.source);
    if (!loaded) {
      std::string errors = "[";
      for (const auto& e : loaded.error()) {
        if (errors.size() > 1) errors += ",";
        append_json_string(errors, e.str());
      }
      errors += "]";
      lifecycle(event("ConfigReloadFailed").str("config", cfg.source).raw("errors", errors));
      if (log)
        log->write(event("ConfigReload").str("config", cfg.source).str("result", "refused")
                       .raw("errors", errors).finish());
      return;
    }
    std::string applied = "[", restart = "[";
    bool apply = false;
    for (const std::string& section : config::changed_sections(cfg, *loaded)) {
      const bool now = section == "queue" || section == "shaping";
      std::string& list = now ? applied : restart;
      if (list.size() > 1) list += ",";
      append_json_string(list, section);
      apply = apply || now;
    }
    applied += "]";
    restart += "]";
    if (apply) {
      cfg.queue = loaded->queue;
      cfg.shaping = loaded->shaping;
      manager->reload(cfg.queue, cfg.shaping);
    }
    lifecycle(event("ConfigReloaded").str("config", cfg.source).raw("applied", applied)
                  .raw("restart_needed", restart));
    if (log)
      log->write(event("ConfigReload").str("config", cfg.source).str("result", "applied")
                     .raw("applied", applied).raw("restart_needed", restart).finish());
  }

  // Graceful phase: stop accepting, let sessions finish their messages, and return from run()
  // when the last one has ended; the deadline or a second signal forces the stop.
  void begin_shutdown(int signo) {
    stopping = true;
    lifecycle(event("ShutdownStarted")
                  .num("signal", signo)
                  .num("grace_ms", cfg.server.shutdown_grace.count())
                  .unum("sessions", listener ? listener->session_count() : 0));
    work.reset();
    wait_for_signal();
    deadline.expires_after(cfg.server.shutdown_grace);
    deadline.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      lifecycle(event("ShutdownForced").str("reason", "grace period over"));
      ioc.stop();
    });
    // Two things to wait for: the listener's sessions and the manager's connections.
    auto one_done = [this] {
      asio::post(control, [this] {
        if (--stops_pending == 0) finish();
      });
    };
    if (admin) admin->stop();
    if (listener) listener->on_idle = one_done;
    if (listener)
      listener->stop();
    else
      one_done();
    if (manager)
      manager->stop(one_done);
    else
      one_done();
  }

  // Nothing is left to wait for: let run() return.
  void finish() {
    asio::post(control, [this] {
      signals.cancel();
      deadline.cancel();
    });
  }

  config::Config cfg;
  unsigned threads;
  asio::io_context ioc;
  asio::strand<asio::io_context::executor_type> control;  // signals, deadline, shutdown
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::signal_set signals;
  asio::steady_timer deadline;
  asio::thread_pool blocking;  // CPU-heavy work off the I/O threads (password hashing)
  bool stopping = false;       // on `control`
  int stops_pending = 2;       // listener idle, manager stopped; on `control`

  observe::Metrics metrics;  // before the spool: its writer thread reports syncs here
  observe::RecentReplies replies;  // the dashboard's latest refusals per provider
  std::unique_ptr<spool::RocksSpool> spool;
  std::unique_ptr<observe::EventLog> log;
  std::shared_ptr<asio::ssl::context> tls;
  std::shared_ptr<const inbound::Credentials> credentials;
  std::unique_ptr<inbound::AuthThrottle> auth_throttle;
  dns::Providers providers;
  classify::Classifier classifier;
  std::unique_ptr<dns::AresResolver> resolver;
  std::unique_ptr<tlspolicy::PolicyResolver> policy;  // [tls]: wraps the resolver
  std::shared_ptr<asio::ssl::context> client_tls;
  std::shared_ptr<asio::ssl::context> client_tls_verify;  // tls = "verify" (null when unused)
  std::unique_ptr<queue::Manager> manager;
  std::unique_ptr<inbound::Listener> listener;
  inbound::InboundContext injector_ctx;  // the listener's, for the injection API
  std::unique_ptr<inbound::Injector> injector;
  std::unique_ptr<http::AdminServer> admin;
};

Status Server::Impl::start() {
  for (const std::filesystem::path& p :
       {std::filesystem::path(cfg.spool.path), std::filesystem::path(cfg.log.path).parent_path()}) {
    std::error_code ec;
    if (!p.empty()) std::filesystem::create_directories(p, ec);
    if (ec) return error("cannot create " + p.string() + ": " + ec.message());
  }
  spool::RocksSpoolOptions so;
  so.path = cfg.spool.path;
  so.min_free_bytes = cfg.spool.min_free_space;
  observe::declare_metrics(metrics);
  so.on_sync = [this](double seconds) { metrics.observe(observe::metric::kSpoolSync, seconds); };
  auto opened = spool::RocksSpool::open(so);
  if (!opened) return Unexpected<Error>{opened.error()};
  spool = std::move(*opened);
  auto l = observe::EventLog::open(cfg.log.path);
  if (!l) return Unexpected<Error>{l.error()};
  log = std::move(*l);

  if (!cfg.smtp.tls_cert.empty()) {
    auto t = net::make_server_tls(cfg.smtp.tls_cert, cfg.smtp.tls_key);
    if (!t) return Unexpected<Error>{t.error()};
    tls = std::move(*t);
  }
  if (!cfg.smtp.auth_credentials.empty()) {
    auto c = inbound::Credentials::load(cfg.smtp.auth_credentials);
    if (!c) return Unexpected<Error>{c.error()};
    credentials = std::move(*c);
    auth_throttle = std::make_unique<inbound::AuthThrottle>(cfg.smtp.auth_max_failures,
                                                            cfg.smtp.auth_failure_window);
  }

  if (!cfg.dns.providers.empty()) {
    auto p = dns::Providers::load(cfg.dns.providers);
    if (!p) return Unexpected<Error>{p.error()};
    providers = std::move(*p);
  }
  if (!cfg.classify.rules.empty()) {
    auto c = classify::Classifier::load(cfg.classify.rules);
    if (!c) return Unexpected<Error>{c.error()};
    classifier = std::move(*c);
  }
  dns::AresOptions ro;
  ro.nameservers = cfg.dns.nameservers;
  ro.timeout = cfg.dns.timeout;
  ro.mx_port = cfg.delivery.port;
  ro.tls = cfg.delivery.tls;
  ro.routes = cfg.routes;
  ro.providers = &providers;
  ro.mta_sts_txt = cfg.tls.mta_sts;
  auto r = dns::AresResolver::create(std::move(ro));
  if (!r) return Unexpected<Error>{r.error()};
  resolver = std::move(*r);
  client_tls = net::make_client_tls();
  if (uses_verify(cfg)) {
    auto v = net::make_verifying_client_tls(cfg.delivery.tls_ca_file);
    if (!v) return Unexpected<Error>{v.error()};
    client_tls_verify = std::move(*v);
  }
  dns::Resolver* destinations = resolver.get();
  if (tlspolicy::PolicyResolver::needed(cfg.tls)) {
    tlspolicy::PolicyOptions po;
    po.tls = cfg.tls;
    po.nameservers = cfg.dns.nameservers;
    po.dns_timeout = cfg.dns.timeout;
    po.https = client_tls_verify.get();
    po.log = log.get();
    po.state = spool.get();
    policy = std::make_unique<tlspolicy::PolicyResolver>(*resolver, std::move(po));
    destinations = policy.get();
  }
  outbound::ClientContext cc;
  cc.delivery = cfg.delivery;
  cc.helo = cfg.delivery.helo_name.empty() ? cfg.server.hostname : cfg.delivery.helo_name;
  cc.own_host = cfg.smtp.listen.host == "localhost" ? "127.0.0.1" : cfg.smtp.listen.host;
  cc.own_port = cfg.smtp.listen.port;
  cc.tls = client_tls.get();
  cc.tls_verify = client_tls_verify.get();
  queue::ManagerOptions mo;
  mo.queue = cfg.queue;
  mo.max_in_flight = cfg.queue.max_in_flight;
  mo.delivery = cfg.delivery;
  mo.shaping = cfg.shaping;
  mo.egress = cfg.egress;
  mo.metrics = &metrics;
  mo.replies = &replies;
  mo.classifier = cfg.classify.rules.empty() ? &classify::Classifier::builtin() : &classifier;
  mo.hostname = cfg.server.hostname;
  manager = std::make_unique<queue::Manager>(ioc, mo, *spool, *destinations, *log, cc);

  // Recovery streams the spool into the queue before anything new arrives.
  const auto t0 = std::chrono::steady_clock::now();
  auto recovered =
      spool->recover([this](spool::MessageMeta m) { manager->recovered(m.id, m.next_due_ms); });
  if (!recovered) return Unexpected<Error>{recovered.error()};
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  lifecycle(event("Recovered").unum("messages", *recovered).num("ms", ms));

  inbound::InboundContext ctx;
  ctx.smtp = cfg.smtp;
  ctx.egress = cfg.egress;
  ctx.metrics = &metrics;
  if (!cfg.dkim.empty()) {
    auto signer = dkim::Signer::load(cfg.dkim);  // keys read once, here
    if (!signer) return Unexpected<Error>{signer.error()};
    ctx.dkim = std::move(*signer);
  }
  ctx.hostname = cfg.server.hostname;
  for (const auto& n : cfg.smtp.client_networks) ctx.client_networks.push_back(*Cidr::parse(n));
  ctx.spool = spool.get();
  ctx.intake = manager.get();
  ctx.log = log.get();
  ctx.credentials = credentials.get();
  ctx.auth_throttle = auth_throttle.get();
  ctx.tls = tls.get();
  ctx.blocking = blocking.get_executor();
  injector_ctx = ctx;
  injector = std::make_unique<inbound::Injector>(injector_ctx);
  listener = std::make_unique<inbound::Listener>(ioc, std::move(ctx));

  http::AdminSources sources;
  sources.sites = [this](std::function<void(std::string)> done) {
    manager->sites_json(std::move(done));
  };
  sources.metrics = [this](std::function<void(std::string)> done) {
    manager->gauges_text([this, done = std::move(done)](std::string gauges) {
      done(metrics.render() + gauges);
    });
  };
  sources.sources = [this](std::function<void(std::string)> done) {
    manager->sources_json(std::move(done));
  };
  sources.replies = [this](std::function<void(std::string)> done) { done(replies.json()); };
  sources.queue = [this](std::string by, std::function<void(int, std::string)> done) {
    manager->queue_summary(std::move(by), std::move(done));
  };
  sources.message = [this](const std::string& id_text,
                           std::function<void(std::string)> done) {
    auto id = spool::parse_id(id_text);
    auto meta = id ? spool->read_meta(*id) : Result<spool::MessageMeta>(Unexpected(Error{""}));
    if (!meta) return done(std::string());
    const spool::MessageMeta m = std::move(*meta);
    manager->message_json(m, [m, done](std::string queue) { done(spool::meta_json(m, queue)); });
  };
  sources.admin = [this](std::string method, std::string what, std::string body,
                         std::function<void(int, std::string)> done) {
    manager->admin_request(std::move(method), std::move(what), std::move(body), std::move(done));
  };
  sources.inject = [this](std::string body, std::string client_ip,
                          std::function<void(int, std::string)> done) {
    injector->inject(std::move(body), std::move(client_ip), std::move(done));
  };
  http::AdminOptions ao;
  ao.api_token = cfg.http.api_token;
  // Room for the largest message base64-encoded in JSON, with its envelope.
  ao.max_body = static_cast<size_t>(cfg.smtp.max_message_size) * 2 + 1'000'000;
  admin = std::make_unique<http::AdminServer>(ioc, std::move(sources), std::move(ao));
  if (auto st = admin->start(cfg.http.listen); !st) return st;
  manager->begin();
  return listener->start(cfg.smtp.listen);
}

Server::Server(config::Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Server::~Server() = default;

namespace {

// Raises the soft limit on open files to the hard one: every connection, inbound and outbound, is
// a descriptor, and distributions start services at 1024. Returns the limit now in force.
uint64_t raise_open_files_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? 0 : static_cast<uint64_t>(rl.rlim_cur);
}

}  // namespace

int Server::run() {
  Impl& s = *impl_;
  const uint64_t max_files = raise_open_files_limit();
  // Inbound sessions may use half of the descriptors left after a reserve for the spool (RocksDB
  // opens files as it goes: starved of descriptors it fails every write), the log, DNS and
  // outbound connections. Beyond that, clients get 421 at once instead of a server that cannot
  // store what it accepts.
  if (max_files > 0) {
    const uint64_t reserve = std::min<uint64_t>(256, max_files / 2);
    const auto sessions = static_cast<uint32_t>(std::max<uint64_t>(8, (max_files - reserve) / 2));
    s.cfg.smtp.max_connections = std::min(s.cfg.smtp.max_connections, sessions);
    s.cfg.delivery.max_connections = std::min(s.cfg.delivery.max_connections, sessions);
  }
  if (auto st = s.start(); !st) {
    lifecycle(event("StartFailed").str("error", st.error().message));
    return 1;
  }
  s.wait_for_signal();
  lifecycle(event("Started")
                .str("version", kVersion)
                .str("commit", kCommit)
                .str("config", s.cfg.source)
                .str("smtp", s.cfg.smtp.listen.str())
                .str("http", s.cfg.http.listen.str())
                .boolean("starttls", s.tls != nullptr)
                .boolean("auth", s.credentials != nullptr)
                .num("threads", s.threads)
                .unum("max_open_files", max_files)
                .unum("max_sessions", s.cfg.smtp.max_connections));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < s.threads; ++i) pool.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : pool) t.join();
  // Spool callbacks still queued reach the queue manager and the log (on the writer thread):
  // they run now, while those are alive. What they post to the stopped io_context never runs.
  s.spool->drain();
  s.admin.reset();
  s.listener.reset();
  // The resolver goes before the manager: its thread (and ares_destroy, which completes every
  // query still out) calls the manager's callbacks, which post to the manager's strand.
  s.resolver.reset();
  s.policy.reset();  // its workers finish the lookup in hand; callers still waiting are dropped
  s.manager.reset();
  s.blocking.join();
  const uint64_t syncs = s.spool->sync_count(), stored = s.spool->stored_count();
  s.spool.reset();  // drains the writer: every pending store completes first
  lifecycle(event("Stopped").unum("stored", stored).unum("syncs", syncs));
  return 0;
}

}  // namespace sluice
