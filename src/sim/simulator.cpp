#include "sim/simulator.h"

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/cidr.h"
#include "core/json.h"
#include "inbound/headers.h"
#include "smtp/command.h"
#include "smtp/data_codec.h"
#include "smtp/line_framer.h"
#include "smtp/reply.h"

namespace sluice::sim {
namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A token bucket: `count` per `per`, bursting up to `count`.
struct Bucket {
  double tokens = -1;
  Clock::time_point last{};
  bool take(const Rate& r, Clock::time_point now) {
    if (!r.limited()) return true;
    const double cap = r.count;
    if (tokens < 0) tokens = cap;
    const double per_ms = cap / static_cast<double>(r.per.count());
    tokens = std::min(
        cap, tokens + per_ms * std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

struct IpState {
  uint32_t active = 0;
  uint32_t peak = 0;
  uint32_t penalty = 0;
  Clock::time_point penalty_changed{};
  Bucket messages, connections;
};

struct Stats {
  uint64_t accepted_messages = 0, accepted_recipients = 0, unique_ids = 0, duplicate_ids = 0;
  uint64_t connections = 0;
  std::map<std::string, uint64_t> refused;  // kind -> count
  struct Second {
    uint64_t accepted = 0, refused_connections = 0, connections = 0, refusals = 0;
    uint32_t concurrency = 0;
  };
  std::vector<Second> timeline;
  Second current;
};

}  // namespace

class Provider {
 public:
  Provider(asio::io_context& ioc, ProviderConfig cfg, Clock::time_point started, uint64_t seed)
      : ioc_(ioc), cfg_(std::move(cfg)), started_(started), acceptor_(ioc), rng_(seed) {
    for (const auto& b : cfg_.blocked_ips) blocked_.push_back(*Cidr::parse(b));
    if (!cfg_.hard_bounce_pattern.empty()) hard_bounce_ = std::regex(cfg_.hard_bounce_pattern);
    if (!cfg_.mailbox_full_pattern.empty()) full_ = std::regex(cfg_.mailbox_full_pattern);
    if (!cfg_.hang_pattern.empty()) hang_ = std::regex(cfg_.hang_pattern);
  }

  Status start() {
    if (cfg_.down_for.count() > 0 && cfg_.down_mode == DownMode::kRefuse) {
      // Not listening while down: connections are refused by the kernel.
      auto t = std::make_shared<asio::steady_timer>(ioc_, cfg_.down_for);
      t->async_wait([this, t](const boost::system::error_code& e) {
        if (e) return;
        if (auto st = listen(); !st)
          std::fprintf(stderr, "sluice sim: %s\n", st.error().message.c_str());
      });
      return ok_status();
    }
    return listen();
  }

  Status listen() {
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(
        cfg_.listen.host == "localhost" ? "127.0.0.1" : cfg_.listen.host, ec);
    tcp::endpoint ep(addr, cfg_.listen.port);
    if (!ec) acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return error("provider " + cfg_.name + ": listen " + cfg_.listen.str() + ": " + ec.message());
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    return ok_status();
  }

  // Once a second: closes the timeline's current second.
  void tick() {
    uint32_t conc = 0;
    for (auto& [ip, st] : ips_) conc += st.active;
    stats_.current.concurrency = conc;
    stats_.timeline.push_back(stats_.current);
    stats_.current = {};
  }

  std::string json() const {
    std::string refused = "{";
    for (const char* kind :
         {"connection_limit", "rate_limit", "connection_rate", "blocked", "session_cap", "greylist",
          "transient", "hard_bounce", "mailbox_full", "down"}) {
      if (refused.size() > 1) refused.push_back(',');
      append_json_string(refused, kind);
      const auto it = stats_.refused.find(kind);
      refused.push_back(':');
      refused.append(std::to_string(it == stats_.refused.end() ? 0 : it->second));
    }
    refused += "}";
    std::string peak = "{";
    for (const auto& [ip, st] : ips_) {
      if (peak.size() > 1) peak.push_back(',');
      append_json_string(peak, ip);
      peak.push_back(':');
      peak.append(std::to_string(st.peak));
    }
    peak += "}";
    std::string timeline = "[";
    for (size_t i = 0; i < stats_.timeline.size(); ++i) {
      const auto& s = stats_.timeline[i];
      if (i) timeline.push_back(',');
      timeline += "{\"t\":" + std::to_string(i) + ",\"accepted\":" + std::to_string(s.accepted) +
                  ",\"connections\":" + std::to_string(s.connections) +
                  ",\"refused_connections\":" + std::to_string(s.refused_connections) +
                  ",\"refusals\":" + std::to_string(s.refusals) +
                  ",\"concurrency\":" + std::to_string(s.concurrency) + "}";
    }
    timeline += "]";
    std::string line = JsonLine()
                           .unum("accepted_messages", stats_.accepted_messages)
                           .unum("accepted_recipients", stats_.accepted_recipients)
                           .unum("unique_message_ids", stats_.unique_ids)
                           .unum("duplicate_message_ids", stats_.duplicate_ids)
                           .unum("connections", stats_.connections)
                           .unum("connection_limit_now", current_limit())
                           .raw("refused", refused)
                           .raw("peak_concurrency", peak)
                           .raw("timeline", timeline)
                           .finish();
    line.pop_back();  // the '\n'
    return line;
  }

  const std::string& name() const { return cfg_.name; }

 private:
  // The configured limit now (the schedule may have changed it).
  uint32_t current_limit() const {
    uint32_t limit = cfg_.connection_limit;
    const auto elapsed = std::chrono::duration_cast<Duration>(Clock::now() - started_);
    for (const auto& ch : cfg_.limit_schedule) {
      if (elapsed >= ch.at) limit = ch.connection_limit;
    }
    return limit;
  }

  // This IP's limit: lowered while it has penalty points (dynamic limits).
  uint32_t limit_for(IpState& st, Clock::time_point now) {
    const uint32_t base = current_limit();
    if (base == 0 || cfg_.penalty_threshold == 0) return base;
    while (st.penalty > 0 && now - st.penalty_changed >= cfg_.penalty_decay) {
      --st.penalty;
      st.penalty_changed += std::chrono::duration_cast<Clock::duration>(cfg_.penalty_decay);
    }
    const uint32_t cut = (st.penalty / cfg_.penalty_threshold) * cfg_.penalty_step;
    return cut >= base ? 1 : base - cut;
  }

  void refuse(const char* kind) {
    ++stats_.refused[kind];
    ++stats_.current.refusals;
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      // Replies go out one write each; without NODELAY, Nagle holds the second of two
      // pipelined replies for the client's delayed ACK (~40 ms per message).
      boost::system::error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(ioc_, session(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> send(tcp::socket& s, const std::string& text) {
    if (cfg_.tarpit.count() > 0) {
      asio::steady_timer t(ioc_, cfg_.tarpit);
      co_await t.async_wait(kTuple);
    }
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(text), kTuple);
    (void)ec;
    (void)n;
  }

  static std::string line(std::string_view reply) { return std::string(reply) + "\r\n"; }

  // A host that never answers: reads (and drops) what the client sends until it closes
  // (false), or until `until` fires: the host is back and this connection gets its banner
  // (true).
  asio::awaitable<bool> silent(tcp::socket& sock, asio::steady_timer& until) {
    // `state` tells a wake-up already queued when the client left that the socket is gone.
    enum class State { kWaiting, kBack, kGone };
    auto state = std::make_shared<State>(State::kWaiting);
    until.async_wait([&sock, state](const boost::system::error_code& e) {
      if (e || *state != State::kWaiting) return;
      *state = State::kBack;
      boost::system::error_code ignored;
      sock.cancel(ignored);  // ends the read below
    });
    char chunk[512];
    for (;;) {
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), kTuple);
      if (ec) break;
    }
    const bool back = *state == State::kBack;
    if (!back) *state = State::kGone;
    until.cancel();
    co_return back;
  }

  // Replies are built in a named string (`out`) before co_await: GCC 12 destroys temporaries
  // of a co_await expression twice.
  asio::awaitable<void> session(tcp::socket sock) {
    std::string out;
    boost::system::error_code ec;
    const auto peer = sock.remote_endpoint(ec);
    if (ec) co_return;
    const std::string ip = peer.address().to_string();
    auto now = Clock::now();
    IpState& st = ips_[ip];
    ++stats_.connections;
    ++stats_.current.connections;

    if (now - started_ < cfg_.down_for) {
      refuse("down");
      ++stats_.current.refused_connections;
      bool back = false;
      if (cfg_.down_mode == DownMode::kSilent) {
        // Says nothing until the client gives up, or the host comes back and answers.
        asio::steady_timer t(ioc_, cfg_.down_for - (now - started_));
        back = co_await silent(sock, t);
      }
      if (!back) co_return;  // closes the socket: the connection ends before any banner
      now = Clock::now();
    }

    if (any_contains(blocked_, ip)) {
      refuse("blocked");
      ++stats_.current.refused_connections;
      out = line(cfg_.block_reply);
      co_await send(sock, out);
      co_return;
    }
    if (!st.connections.take(cfg_.connection_rate, now)) {
      refuse("connection_rate");
      ++stats_.current.refused_connections;
      out = line(cfg_.connection_rate_reply);
      co_await send(sock, out);
      co_return;
    }
    const uint32_t limit = limit_for(st, now);
    const bool over = limit > 0 && st.active >= limit;
    if (over) {
      refuse("connection_limit");
      ++stats_.current.refused_connections;
      if (st.penalty == 0) st.penalty_changed = now;
      ++st.penalty;
      if (cfg_.limit_stage == Stage::kBanner) {
        if (cfg_.limit_action == LimitAction::kHangup) co_return;  // silent hang-up
        out = line(cfg_.limit_reply);
        co_await send(sock, out);
        co_return;
      }
    } else {
      ++st.active;
      st.peak = std::max(st.peak, st.active);
    }
    co_await dialogue(sock, st, over);
    if (!over) --ips_[ip].active;
  }

  // The SMTP conversation; `over` = refuse at EHLO or MAIL (limit_stage) for concurrency.
  asio::awaitable<void> dialogue(tcp::socket& sock, IpState& st, bool over) {
    std::string out;
    out = line("220 " + cfg_.hostname + " ESMTP sluice-sim " + cfg_.name);
    co_await send(sock, out);
    smtp::LineFramer framer;
    std::string buf;
    std::optional<smtp::MailFrom> mail;
    std::vector<std::string> rcpts;
    bool hang = false;
    uint32_t session_messages = 0;
    char chunk[16384];
    for (;;) {
      auto frame = framer.next(buf);
      if (frame.kind == smtp::LineFramer::Kind::kNeedMore) {
        buf.erase(0, frame.consumed);
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), kTuple);
        if (ec) co_return;
        buf.append(chunk, n);
        continue;
      }
      const std::string cmdline(frame.line);
      buf.erase(0, frame.consumed);
      if (frame.kind != smtp::LineFramer::Kind::kLine) {
        out = line("500 5.5.2 Line too long or bare LF");
        co_await send(sock, out);
        continue;
      }
      auto parsed = smtp::parse_command(cmdline, {true});
      if (!parsed) {
        out = parsed.error().reply.wire();
        co_await send(sock, out);
        continue;
      }
      smtp::Command& cmd = *parsed;
      if (std::holds_alternative<smtp::Ehlo>(cmd) || std::holds_alternative<smtp::Helo>(cmd)) {
        if (over && cfg_.limit_stage == Stage::kEhlo) {
          if (cfg_.limit_action == LimitAction::kHangup) co_return;
          out = line(cfg_.limit_reply);
          co_await send(sock, out);
          co_return;
        }
        const bool e = std::holds_alternative<smtp::Ehlo>(cmd);
        out = e ? "250-" + cfg_.hostname +
                      "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                      "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 104857600\r\n"
                : line("250 " + cfg_.hostname);
        co_await send(sock, out);
      } else if (auto* m = std::get_if<smtp::MailFrom>(&cmd)) {
        if (over) {  // limit_stage mail
          if (cfg_.limit_action == LimitAction::kHangup) co_return;
          out = line(cfg_.limit_reply);
          co_await send(sock, out);
          co_return;
        }
        if (cfg_.max_messages_per_connection &&
            session_messages >= cfg_.max_messages_per_connection) {
          refuse("session_cap");
          out = line(cfg_.session_cap_reply);
          co_await send(sock, out);
          co_return;
        }
        if (!st.messages.take(cfg_.message_rate, Clock::now())) {
          refuse("rate_limit");
          out = line(cfg_.rate_reply);
          co_await send(sock, out);
          continue;
        }
        mail = std::move(*m);
        rcpts.clear();
        out = line("250 2.1.0 Ok");
        co_await send(sock, out);
      } else if (auto* r = std::get_if<smtp::RcptTo>(&cmd)) {
        const std::string addr = r->recipient.str();
        const std::string reply =
            rcpt_reply(addr, mail ? (mail->sender ? mail->sender->str() : "") : "", sock);
        if (!mail) {
          out = line("503 5.5.1 Need MAIL first");
          co_await send(sock, out);
        } else {
          if (reply.starts_with("250")) {
            rcpts.push_back(addr);
            if (hang_ && std::regex_search(addr, *hang_)) hang = true;
          }
          out = line(reply);
          co_await send(sock, out);
        }
      } else if (std::holds_alternative<smtp::Data>(cmd)) {
        if (!mail || rcpts.empty()) {
          out = line("554 5.5.1 No valid recipients");
          co_await send(sock, out);
          continue;
        }
        out = line("354 End data with <CR><LF>.<CR><LF>");
        co_await send(sock, out);
        smtp::DataDecoder dec;
        std::string body;
        for (;;) {
          auto step = dec.decode(buf, &body);
          buf.erase(0, step.consumed);
          if (step.done) break;
          auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), kTuple);
          if (ec) co_return;
          buf.append(chunk, n);
        }
        if (hang) {  // stop answering; keep the connection open until the client gives up
          for (;;) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), kTuple);
            if (ec) co_return;
          }
        }
        std::uniform_real_distribution<double> u(0.0, 1.0);
        if (cfg_.transient_failure_rate > 0 && u(rng_) < cfg_.transient_failure_rate) {
          refuse("transient");
          out = line(cfg_.transient_reply);
          co_await send(sock, out);
        } else {
          ++stats_.accepted_messages;
          ++session_messages;
          ++stats_.current.accepted;
          stats_.accepted_recipients += rcpts.size();
          if (auto id = inbound::header_value(body, "Message-ID")) {
            if (message_ids_.insert(std::string(*id)).second)
              ++stats_.unique_ids;
            else
              ++stats_.duplicate_ids;
          }
          out = line("250 2.0.0 Ok: queued");
          co_await send(sock, out);
        }
        mail.reset();
        rcpts.clear();
      } else if (std::holds_alternative<smtp::Rset>(cmd)) {
        mail.reset();
        rcpts.clear();
        out = line("250 2.0.0 Ok");
        co_await send(sock, out);
      } else if (std::holds_alternative<smtp::Quit>(cmd)) {
        out = line("221 2.0.0 Bye");
        co_await send(sock, out);
        co_return;
      } else if (std::holds_alternative<smtp::Noop>(cmd)) {
        out = line("250 2.0.0 Ok");
        co_await send(sock, out);
      } else {
        out = line("502 5.5.1 Not implemented");
        co_await send(sock, out);
      }
    }
  }

  std::string rcpt_reply(const std::string& addr, const std::string& sender, tcp::socket& sock) {
    if (hard_bounce_ && std::regex_search(addr, *hard_bounce_)) {
      refuse("hard_bounce");
      return cfg_.hard_bounce_reply;
    }
    if (full_ && std::regex_search(addr, *full_)) {
      refuse("mailbox_full");
      return cfg_.mailbox_full_reply;
    }
    if (cfg_.greylist.count() > 0) {
      boost::system::error_code ec;
      const std::string key =
          sock.remote_endpoint(ec).address().to_string() + "|" + sender + "|" + addr;
      auto [it, fresh] = greylist_.try_emplace(key, Clock::now());
      if (fresh || Clock::now() - it->second < cfg_.greylist) {
        refuse("greylist");
        return cfg_.greylist_reply;
      }
    }
    return "250 2.1.5 Ok";
  }

  asio::io_context& ioc_;
  const ProviderConfig cfg_;
  const Clock::time_point started_;
  tcp::acceptor acceptor_;
  std::mt19937_64 rng_;
  std::vector<Cidr> blocked_;
  std::optional<std::regex> hard_bounce_, full_, hang_;
  std::unordered_map<std::string, IpState> ips_;
  std::unordered_map<std::string, Clock::time_point> greylist_;
  std::unordered_set<std::string> message_ids_;
  Stats stats_;
};

namespace {

std::string stats_json(const std::vector<std::unique_ptr<Provider>>& providers,
                       Clock::time_point started) {
  std::string out =
      "{\"uptime_ms\":" +
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()) +
      ",\"providers\":{";
  for (size_t i = 0; i < providers.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, providers[i]->name());
    out.push_back(':');
    out.append(providers[i]->json());
  }
  return out + "}}\n";
}

void write_file(const std::string& path, const std::string& text) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  if (std::FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());  // readers never see a half-written file
  }
}

asio::awaitable<void> http_session(tcp::socket sock,
                                   const std::vector<std::unique_ptr<Provider>>& providers,
                                   Clock::time_point started) {
  std::string req;
  char chunk[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), kTuple);
    if (ec) co_return;
    req.append(chunk, n);
  }
  const bool stats = req.starts_with("GET /stats");
  const std::string body = stats ? stats_json(providers, started) : std::string("not found\n");
  const std::string resp =
      std::string(stats ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n") +
      "Content-Type: " + (stats ? "application/json" : "text/plain") +
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  auto [ec, n] = co_await asio::async_write(sock, asio::buffer(resp), kTuple);
  (void)ec;
  (void)n;
}

}  // namespace

int run_simulator(const SimConfig& config) {
  asio::io_context ioc(1);
  const auto started = Clock::now();
  std::vector<std::unique_ptr<Provider>> providers;
  uint64_t seed = config.seed;
  for (const auto& p : config.providers) {
    providers.push_back(std::make_unique<Provider>(ioc, p, started, seed++));
    if (auto st = providers.back()->start(); !st) {
      std::fprintf(stderr, "sluice sim: %s\n", st.error().message.c_str());
      return 1;
    }
  }
  tcp::acceptor http(ioc);
  if (config.http_listen) {
    boost::system::error_code ec;
    const auto& h = *config.http_listen;
    tcp::endpoint ep(asio::ip::make_address(h.host == "localhost" ? "127.0.0.1" : h.host, ec),
                     h.port);
    if (!ec) http.open(ep.protocol(), ec);
    if (!ec) http.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) http.bind(ep, ec);
    if (!ec) http.listen(64, ec);
    if (ec) {
      std::fprintf(stderr, "sluice sim: http_listen %s: %s\n", h.str().c_str(),
                   ec.message().c_str());
      return 1;
    }
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          for (;;) {
            auto [ec, sock] = co_await http.async_accept(kTuple);
            if (ec) co_return;
            asio::co_spawn(ioc, http_session(std::move(sock), providers, started), asio::detached);
          }
        },
        asio::detached);
  }
  asio::steady_timer ticker(ioc);
  std::function<void()> tick = [&] {
    ticker.expires_after(std::chrono::seconds(1));
    ticker.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      for (auto& p : providers) p->tick();
      write_file(config.stats_file, stats_json(providers, started));
      tick();
    });
  };
  tick();
  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });
  std::string names;
  for (const auto& p : config.providers)
    names += (names.empty() ? "" : " ") + p.name + "@" + p.listen.str();
  std::fprintf(stderr, "{\"event\":\"SimStarted\",\"providers\":\"%s\"}\n", names.c_str());
  std::fflush(stderr);
  ioc.run();
  write_file(config.stats_file, stats_json(providers, started));
  std::fprintf(stderr, "{\"event\":\"SimStopped\"}\n");
  return 0;
}

}  // namespace sluice::sim
