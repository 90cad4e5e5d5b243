#include "outbound/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "core/text.h"
#include "core/utf8.h"
#include "net/stream.h"
#include "smtp/data_codec.h"
#include "smtp/reply_parser.h"
#include "smtp/xtext.h"

namespace sluice::outbound {
namespace asio = boost::asio;
using asio::ip::tcp;
using smtp::Reply;

namespace {

// What the server's EHLO reply offers.
struct Extensions {
  bool pipelining = false, eight_bit = false, smtputf8 = false, dsn = false, starttls = false;
  uint64_t size = 0;  // 0: not advertised or no limit

  static Extensions from(const Reply& ehlo) {
    Extensions e;
    for (size_t i = 1; i < ehlo.lines.size(); ++i) {  // line 0 is the greeting
      const std::string_view l = ehlo.lines[i];
      const std::string_view kw = l.substr(0, l.find(' '));
      if (iequals(kw, "PIPELINING"))
        e.pipelining = true;
      else if (iequals(kw, "8BITMIME"))
        e.eight_bit = true;
      else if (iequals(kw, "SMTPUTF8"))
        e.smtputf8 = true;
      else if (iequals(kw, "DSN"))
        e.dsn = true;
      else if (iequals(kw, "STARTTLS"))
        e.starttls = true;
      else if (iequals(kw, "SIZE") && l.size() > 5)
        e.size = parse_u64(trim(l.substr(5))).value_or(0);
    }
    return e;
  }
};

// What is kept of a receiver's reply (reply_parser.h allows 256 lines of 4 KB): enough for any
// real reply's words, and bounded for classification, logs, site state and DSNs.
constexpr size_t kKeptReplyText = 2048;
// The body is dot-stuffed and written this much at a time.
constexpr size_t kBodyPiece = 64 * 1024;

// A reply sluice writes itself (a lost connection, a refusal it decides): bounded like a
// receiver's, whatever error text went into it.
Reply synthesized(uint16_t code, std::string_view enhanced, std::string text) {
  return Reply::make(code, enhanced, text).bounded(kKeptReplyText);
}

std::string notify_param(uint8_t bits) {
  if (bits & spool::kNotifyNever) return "NEVER";
  std::string s;
  for (auto [bit, name] :
       {std::pair{spool::kNotifySuccess, "SUCCESS"}, std::pair{spool::kNotifyFailure, "FAILURE"},
        std::pair{spool::kNotifyDelay, "DELAY"}}) {
    if (!(bits & bit)) continue;
    if (!s.empty()) s.push_back(',');
    s.append(name);
  }
  return s;
}

class Connection {
 public:
  Connection(const ClientContext& ctx, Destination dest, std::string lane)
      : ctx_(ctx), cfg_(ctx.delivery), dest_(std::move(dest)), lane_(std::move(lane)) {}

  asio::awaitable<void> run(Job first) {
    Job job = std::move(first);
    const bool ok1 = co_await open(job);
    if (!ok1) {
      ctx_.source->connection_closed(lane_, false);
      co_return;
    }
    ctx_.source->connection_established(lane_);
    for (;;) {
      co_await transaction(job);
      ++transactions_;
      if (broken_) break;
      auto next = co_await ctx_.source->next_job(lane_, transactions_);
      if (!next) break;
      job = std::move(*next);
    }
    if (!broken_) {
      // QUIT is a courtesy: its reply changes nothing.
      const bool sent = co_await send("QUIT\r\n");
      if (sent) (void)co_await read_reply(cfg_.command_timeout);
    }
    if (stream_) stream_->close();
    ctx_.source->connection_closed(lane_, true);
  }

 private:
  // Fails every recipient of `job` with one reply and reports it.
  void fail_all(const Job& job, Outcome outcome, Stage stage, const Reply& reply) {
    JobReport r{job.token, {}, host_, ip_, transactions_, tls_};
    for (size_t i : job.recipients) r.results.push_back({i, outcome, stage, reply});
    ctx_.source->report(std::move(r));
  }

  // Connects to the first host, from `first_host` on (MX order), that accepts the connection.
  asio::awaitable<bool> connect(size_t first_host) {
    auto ex = co_await asio::this_coro::executor;
    std::string errors;
    for (size_t h = first_host; h < dest_.hosts.size(); ++h) {
      const Host& host = dest_.hosts[h];
      for (const std::string& addr : host.addresses) {
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(addr, ec);
        if (ec) continue;
        if (is_self(address, host.port)) {
          loops_back_ = true;
          errors += " " + host.name + "[" + addr + "]:" + std::to_string(host.port) +
                    " is this server;";
          continue;
        }
        tcp::socket sock(ex);
        sock.open(address.is_v4() ? tcp::v4() : tcp::v6(), ec);
        if (!ec && !cfg_.source_ip.empty()) {
          const auto src = asio::ip::make_address(cfg_.source_ip, ec);
          if (!ec && src.is_v4() == address.is_v4()) sock.bind(tcp::endpoint(src, 0), ec);
        }
        if (ec) {
          errors += " " + addr + ": " + ec.message() + ";";
          continue;
        }
        asio::steady_timer timer(ex);
        timer.expires_after(cfg_.connect_timeout);
        bool timed_out = false;
        timer.async_wait([&](const boost::system::error_code& e) {
          if (!e) {
            timed_out = true;
            sock.cancel();
          }
        });
        auto [cec] = co_await sock.async_connect(tcp::endpoint(address, host.port),
                                                 asio::as_tuple(asio::use_awaitable));
        timer.cancel();
        if (!cec && !timed_out) {
          host_index_ = h;
          host_ = host.name;
          ip_ = addr;
          stream_ = std::make_unique<net::Stream>(std::move(sock));
          co_return true;
        }
        errors += " " + host.name + "[" + addr + "]:" + std::to_string(host.port) + " " +
                  (timed_out ? std::string("timed out") : cec.message()) + ";";
      }
    }
    last_error_ = errors.empty() ? std::string(" no address to connect to") : errors;
    co_return false;
  }

  // Whether address:port is sluice's own listener (a wildcard listener is every local address).
  bool is_self(const asio::ip::address& address, uint16_t port) const {
    if (ctx_.own_port == 0 || port != ctx_.own_port) return false;
    boost::system::error_code ec;
    const auto own = asio::ip::make_address(ctx_.own_host, ec);
    if (ec) return false;
    if (own.is_unspecified()) return address.is_loopback() || address.is_unspecified();
    return own == address;
  }

  asio::awaitable<bool> send(std::string_view data) {
    // (GCC 12 miscompiles a co_await whose error_code result is tested in the if condition
    // itself — SIGILL — so results are always named first in this file.)
    const auto ec = co_await stream_->write(data, cfg_.command_timeout);
    if (ec) broken_ = true;
    co_return !ec;
  }

  // The next reply, or nullopt when the connection failed (broken_ is set, last_error_ says why).
  // `timeout` bounds the whole reply, not each read: a receiver that trickles a byte at a time
  // cannot hold the connection longer (RFC 5321 section 4.5.3.2 times a reply, not a read). The
  // reply is cut to kKeptReplyText unless `whole` (EHLO, whose every line is read).
  asio::awaitable<std::optional<Reply>> read_reply(std::chrono::milliseconds timeout,
                                                   bool whole = false) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::string_view view(buf_.data() + pos_, len_ - pos_);
      const size_t before = view.size();
      auto r = parser_->next(view);
      pos_ += before - view.size();
      if (pos_ == len_) pos_ = len_ = 0;
      if (r) {
        if (r->ok()) {
          if ((*r)->code == 421) broken_ = true;  // the server is closing the connection
          if (whole) co_return std::move(**r);
          co_return (*r)->bounded(kKeptReplyText);
        }
        // The detail may quote what the receiver sent (garbage, a 10 MB line): a little of it.
        last_error_ = "protocol error: " + std::string(utf8_prefix(r->error().detail, 200));
        broken_ = true;
        co_return std::nullopt;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        last_error_ = "timed out (reply not complete within " +
                      std::to_string(timeout.count() / 1000) + " s)";
        broken_ = true;
        co_return std::nullopt;
      }
      if (buf_.size() - len_ < 4096) buf_.resize(std::max<size_t>(16384, buf_.size() * 2));
      size_t n = 0;
      const auto ec = co_await stream_->read_some(
          asio::buffer(buf_.data() + len_, buf_.size() - len_), n, left);
      len_ += n;
      if (ec) {
        last_error_ = ec == asio::error::timed_out ? "timed out" : ec.message();
        broken_ = true;
        co_return std::nullopt;
      }
    }
  }

  // A reply the protocol does not allow at that point, as a transient failure that names it.
  Reply out_of_step(const Reply& got, std::string_view command, std::string_view expected) const {
    return synthesized(451, "4.5.0",
                       host_ + " answered " + std::string(command) + " with \"" + got.summary() +
                           "\" where " + std::string(expected) +
                           " was expected: protocol error, not delivered");
  }

  Reply lost(Stage stage) const {
    return synthesized(451, "4.4.2",
                       "connection to " + host_ + " lost during " + std::string(stage_name(stage)) +
                           ": " + last_error_);
  }

  // Connects, reads the banner, EHLO, STARTTLS. On failure reports `job` and returns false.
  asio::awaitable<bool> open(const Job& job) {
    size_t first_host = 0;
    for (;;) {
      const bool ok2 = co_await connect(first_host);
      if (!ok2 && loops_back_) {
        // The MX hosts that could take the mail are this server: a loop, for good (Postfix:
        // "mail for ... loops back to myself").
        fail_all(job, Outcome::kPermanent, Stage::kConnect,
                 synthesized(554, "5.4.6",
                             "mail for " + dest_.site + " loops back to myself:" + last_error_));
        co_return false;
      }
      if (!ok2) {
        fail_all(job, Outcome::kTransient, Stage::kConnect,
                 synthesized(451, "4.4.1", "cannot connect to " + dest_.site + ":" + last_error_));
        co_return false;
      }
      // While no other connection to the site works, a host that refuses for now (4xx or a
      // hang-up at the banner, 4xx at EHLO) passes the mail to the next MX (RFC 5321 §5).
      next_mx_ = job.next_mx_on_refusal && host_index_ + 1 < dest_.hosts.size();
      auto banner = co_await read_reply(cfg_.command_timeout);
      if (next_mx_ && (!banner || banner->code / 100 == 4)) {
        first_host = next_host();
        continue;
      }
      if (!banner) {
        fail_all(job, Outcome::kTransient, Stage::kBanner, lost(Stage::kBanner));
        co_return false;
      }
      if (!banner->positive()) {
        fail_all(job, outcome_of(*banner), Stage::kBanner, *banner);
        stream_->close();
        co_return false;
      }
      const bool ok3 = co_await hello(job);
      if (ok3) break;
      if (!ehlo_refused_) co_return false;
      first_host = next_host();
    }
    next_mx_ = false;
    // DANE (the host has validated TLSA records) authenticates by them; "verify" (configured or
    // MTA-STS enforce) by the CA chain and the MX host's name; MTA-STS testing checks the same
    // but only reports. The policy's source names itself in every deferral (tls_by).
    const std::vector<dns::Tlsa>* tlsa =
        host_index_ < dest_.hosts.size() && !dest_.hosts[host_index_].tlsa.empty()
            ? &dest_.hosts[host_index_].tlsa
            : nullptr;
    const bool dane = tlsa != nullptr;
    const bool verify = dane || dest_.tls == config::TlsPolicy::kVerify;
    const bool report_only = !verify && dest_.tls_testing && ctx_.tls_verify;
    const bool must_tls = verify || dest_.tls == config::TlsPolicy::kRequired;
    const bool want_tls =
        (dest_.tls != config::TlsPolicy::kNone || dane || report_only) && ctx_.tls;
    const std::string by = dest_.tls_by.empty() ? std::string() : " (" + dest_.tls_by + ")";
    if (verify && !ctx_.tls_verify) {
      fail_all(job, Outcome::kTransient, Stage::kStartTls,
               synthesized(451, "4.7.5", "TLS verification is required for " + dest_.site +
                                             " but no trusted CAs are loaded"));
      stream_->close();
      co_return false;
    }
    tls_.clear();
    if (want_tls && ext_.starttls) {
      const bool ok4 = co_await send("STARTTLS\r\n");
      if (!ok4) {
        fail_all(job, Outcome::kTransient, Stage::kStartTls, lost(Stage::kStartTls));
        co_return false;
      }
      auto r = co_await read_reply(cfg_.command_timeout);
      if (!r) {
        fail_all(job, Outcome::kTransient, Stage::kStartTls, lost(Stage::kStartTls));
        co_return false;
      }
      if (r->code == 220) {
        pos_ = len_ = 0;  // nothing may be read past the 220 in clear
        bool dane_usable = false;
        auto prepare = [&](SSL* ssl) {
          if (dane) {
            SSL_dane_enable(ssl, host_.c_str());
            // RFC 7672 section 3.1.1: a DANE-EE(3) match needs no name check.
            SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
            for (const dns::Tlsa& t : *tlsa) {
              if (t.usage < 2) continue;  // PKIX-TA/PKIX-EE: unusable for SMTP (section 3.1.3)
              const int added = SSL_dane_tlsa_add(
                  ssl, t.usage, t.selector, t.mtype,
                  reinterpret_cast<const unsigned char*>(t.data.data()), t.data.size());
              dane_usable = dane_usable || added > 0;
            }
            // Only unusable records: TLS is still required, unauthenticated (section 2.2).
            if (!dane_usable) SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
          } else if (report_only) {
            SSL_set1_host(ssl, host_.c_str());
            SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);  // verified, not enforced
          }
        };
        const bool pkix = verify && !dane;
        const auto ec = co_await stream_->start_tls_client(
            verify || report_only ? *ctx_.tls_verify : *ctx_.tls, host_, cfg_.command_timeout,
            pkix, prepare);
        if (ec && verify && !stream_->verify_error().empty()) {
          // The certificate, not the network: a policy failure of its own (category tls).
          fail_all(job, Outcome::kTransient, Stage::kStartTls,
                   synthesized(451, "4.7.5",
                               std::string(dane ? "DANE" : "TLS certificate") +
                                   " verification failed for " + host_ + by + ": " +
                                   stream_->verify_error()));
          stream_->close();
          co_return false;
        }
        if (ec) {
          last_error_ = "TLS handshake failed: " + ec.message();
          broken_ = true;
          fail_all(job, Outcome::kTransient, Stage::kStartTls, lost(Stage::kStartTls));
          co_return false;
        }
        tls_ = stream_->tls_description();
        if (dane) {
          tls_ += dane_usable ? " dane-verified" : " unverified (no usable TLSA record)";
        } else if (verify) {
          tls_ += " verified";
        } else if (report_only) {
          const std::string why = stream_->verify_error();
          tls_ += why.empty() ? " verified" : " unverified: " + why;
        } else {
          tls_ += " unverified";
        }
        tls_ += by;
        const bool ok5 = co_await hello(job);
        if (!ok5) co_return false;
      } else if (must_tls) {
        fail_all(job, Outcome::kTransient, Stage::kStartTls, *r);
        co_return false;
      }
    }
    if (must_tls && !stream_->tls()) {
      fail_all(job, Outcome::kTransient, Stage::kStartTls,
               synthesized(451, "4.7.5",
                           "TLS is required for " + dest_.site + by + " but " + host_ +
                               " does not offer STARTTLS"));
      stream_->close();
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> hello(const Job& job) {
    const std::string ehlo = "EHLO " + ctx_.helo + "\r\n";
    const bool ok6 = co_await send(ehlo);
    if (!ok6) {
      fail_all(job, Outcome::kTransient, Stage::kEhlo, lost(Stage::kEhlo));
      co_return false;
    }
    auto r = co_await read_reply(cfg_.command_timeout, true);
    if (r && r->permanent()) {  // no ESMTP: plain HELO, no extensions
      const std::string helo = "HELO " + ctx_.helo + "\r\n";
      const bool ok7 = co_await send(helo);
      if (!ok7)
        r.reset();
      else
        r = co_await read_reply(cfg_.command_timeout);
      if (r && r->positive()) {
        ext_ = Extensions{};
        co_return true;
      }
    }
    if (!r) {
      fail_all(job, Outcome::kTransient, Stage::kEhlo, lost(Stage::kEhlo));
      co_return false;
    }
    if (!r->positive()) {
      if (next_mx_ && r->code / 100 == 4) {
        ehlo_refused_ = true;  // open() tries the next MX; nothing to report yet
        co_return false;
      }
      fail_all(job, outcome_of(*r), Stage::kEhlo, *r);
      co_return false;
    }
    ext_ = Extensions::from(*r);
    co_return true;
  }

  // Drops this host's connection for the next MX host; returns that host's index.
  size_t next_host() {
    if (stream_) stream_->close();
    stream_.reset();
    pos_ = len_ = 0;
    parser_ = std::make_unique<smtp::ReplyParser>();  // a new conversation
    broken_ = false;
    ehlo_refused_ = false;
    return host_index_ + 1;
  }

  // Refusals sluice decides itself, before sending anything: the receiver lacks what the
  // message needs.
  std::optional<Reply> precheck(const Job& job) const {
    if (job.meta->smtputf8 && !ext_.smtputf8) {
      return synthesized(553, "5.6.7",
                         host_ + " does not support SMTPUTF8, which this message needs");
    }
    if (job.meta->body_type == spool::BodyType::k8BitMime && !ext_.eight_bit) {
      return synthesized(554, "5.6.3",
                         host_ + " does not support 8BITMIME and sluice does not convert to 7bit");
    }
    if (ext_.size && job.body.size() > ext_.size) {
      return synthesized(552, "5.3.4",
                         "message of " + std::to_string(job.body.size()) + " octets exceeds " +
                             host_ + "'s SIZE " + std::to_string(ext_.size));
    }
    return std::nullopt;
  }

  std::string mail_command(const Job& job) const {
    const auto& m = *job.meta;
    std::string c = "MAIL FROM:<" + m.sender + ">";
    if (ext_.size) c += " SIZE=" + std::to_string(job.body.size());
    if (m.body_type == spool::BodyType::k8BitMime && ext_.eight_bit) c += " BODY=8BITMIME";
    if (m.smtputf8) c += " SMTPUTF8";
    if (ext_.dsn) {
      if (m.ret == spool::DsnRet::kFull) c += " RET=FULL";
      if (m.ret == spool::DsnRet::kHeaders) c += " RET=HDRS";
      if (!m.envid.empty()) c += " ENVID=" + smtp::xtext_encode(m.envid);
    }
    return c + "\r\n";
  }

  std::string rcpt_command(const spool::Recipient& r) const {
    std::string c = "RCPT TO:<" + r.address + ">";
    if (ext_.dsn) {
      if (r.notify) c += " NOTIFY=" + notify_param(r.notify);
      if (!r.orcpt_type.empty()) {
        c += " ORCPT=" + r.orcpt_type + ";" +
             (iequals(r.orcpt_type, "utf-8") ? r.orcpt : smtp::xtext_encode(r.orcpt));
      }
    }
    return c + "\r\n";
  }

  asio::awaitable<void> transaction(const Job& job) {
    JobReport report{job.token, {}, host_, ip_, transactions_, tls_};
    if (auto refusal = precheck(job)) {
      for (size_t i : job.recipients)
        report.results.push_back({i, outcome_of(*refusal), Stage::kMail, *refusal});
      ctx_.source->report(std::move(report));
      co_return;
    }
    const size_t n = job.recipients.size();
    std::vector<std::optional<RecipientResult>> results(n);
    auto finish = [&](Stage stage) {
      // Whoever has no result yet lost the connection at `stage`.
      for (size_t k = 0; k < n; ++k) {
        if (!results[k])
          results[k] = RecipientResult{job.recipients[k], Outcome::kTransient, stage, lost(stage)};
      }
      for (auto& r : results) report.results.push_back(std::move(*r));
      ctx_.source->report(std::move(report));
    };

    // MAIL, RCPT..., DATA: one write when pipelining, else one round trip each.
    std::vector<std::string> commands{mail_command(job)};
    for (size_t i : job.recipients) commands.push_back(rcpt_command(job.meta->recipients[i]));
    commands.push_back("DATA\r\n");
    if (ext_.pipelining) {
      std::string all;
      for (auto& c : commands) all += c;
      const bool ok8 = co_await send(all);
      if (!ok8) co_return finish(Stage::kMail);
    }
    auto command = [&](size_t i) -> asio::awaitable<std::optional<Reply>> {
      if (!ext_.pipelining) {
        const bool sent = co_await send(commands[i]);
        if (!sent) co_return std::nullopt;
      }
      co_return co_await read_reply(cfg_.command_timeout);
    };

    auto mail = co_await command(0);
    if (!mail) co_return finish(Stage::kMail);
    if (mail->code / 100 != 2) {
      const Reply m = mail->positive() ? out_of_step(*mail, "MAIL", "2xx") : *mail;
      if (mail->positive()) broken_ = true;  // a conversation out of step is not reused
      for (size_t k = 0; k < n; ++k)
        results[k] = RecipientResult{job.recipients[k], outcome_of(m), Stage::kMail, m};
      if (ext_.pipelining) {  // the RCPTs and DATA were sent too: read their replies
        for (size_t i = 1; i < commands.size(); ++i) {
          const auto ok9 = co_await read_reply(cfg_.command_timeout);
          if (!ok9) co_return finish(Stage::kRcpt);
          // A 354 to DATA after a refused MAIL: the receiver now reads message data, and the
          // next transaction's commands would land in it. This conversation is over.
          if (i + 1 == commands.size() && ok9->code == 354) broken_ = true;
        }
      }
      co_return finish(Stage::kMail);
    }
    std::vector<size_t> accepted;
    for (size_t k = 0; k < n; ++k) {
      auto r = co_await command(k + 1);
      if (!r) co_return finish(Stage::kRcpt);
      if (r->code / 100 == 2) {
        accepted.push_back(k);
      } else if (r->positive()) {  // a 3xx to RCPT: out of step, not an acceptance
        const Reply o = out_of_step(*r, "RCPT", "2xx");
        results[k] = RecipientResult{job.recipients[k], outcome_of(o), Stage::kRcpt, o};
      } else {
        results[k] = RecipientResult{job.recipients[k], outcome_of(*r), Stage::kRcpt, *r};
      }
    }
    std::optional<Reply> data;
    if (ext_.pipelining || !accepted.empty()) {
      data = co_await command(commands.size() - 1);
      if (!data) co_return finish(Stage::kData);
    }
    if (accepted.empty()) {
      // Nobody to send to. A server that says 354 anyway gets an empty message ended at once.
      if (data && data->code == 354) {
        const bool sent = co_await send(".\r\n");
        std::optional<Reply> r;
        if (sent) r = co_await read_reply(cfg_.data_timeout);
        if (!r) co_return finish(Stage::kData);
      }
      co_await reset();
      co_return finish(Stage::kData);
    }
    if (data->code != 354) {
      // Only 354 lets the message go. Any other positive reply is a receiver out of step
      // with the protocol, never a delivery: nothing was sent, so the message is retried, and a
      // conversation in an unknown state is not reused.
      const Reply r = data->positive() ? out_of_step(*data, "DATA", "354") : *data;
      if (data->positive()) broken_ = true;
      for (size_t k : accepted)
        results[k] = RecipientResult{job.recipients[k], outcome_of(r), Stage::kData, r};
      co_await reset();  // unless broken_: then run() closes the connection
      co_return finish(Stage::kData);
    }
    // The body goes out in pieces, dot-stuffed as it goes: a big message is not held twice
    // (spooled and encoded) per connection. data_timeout bounds the whole body.
    smtp::DataEncoder encoder;
    std::string wire;
    std::string_view rest = job.body;
    const auto deadline = std::chrono::steady_clock::now() + cfg_.data_timeout;
    for (;;) {
      const size_t n = std::min(rest.size(), kBodyPiece);
      encoder.encode(rest.substr(0, n), &wire);
      rest.remove_prefix(n);
      if (rest.empty()) encoder.finish(&wire);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      boost::system::error_code wec = asio::error::timed_out;
      if (left.count() > 0) {
        const auto written = co_await stream_->write(wire, left);
        wec = written;
      }
      wire.clear();
      if (wec) {
        last_error_ = wec == asio::error::timed_out ? "timed out sending the message"
                                                   : wec.message();
        broken_ = true;
        co_return finish(Stage::kEndOfData);
      }
      if (rest.empty()) break;
    }
    auto final_reply = co_await read_reply(cfg_.data_timeout);
    if (!final_reply) co_return finish(Stage::kEndOfData);
    // Only a 2xx delivers; a 1xx or 3xx to the final dot is the receiver out of step.
    if (final_reply->code / 100 != 2 && final_reply->positive()) {
      final_reply = out_of_step(*final_reply, "the end of DATA", "2xx");
      broken_ = true;
    }
    for (size_t k : accepted) {
      results[k] = RecipientResult{job.recipients[k], outcome_of(*final_reply), Stage::kEndOfData,
                                   *final_reply};
    }
    finish(Stage::kEndOfData);
  }

  // After a transaction that MAIL opened but DATA did not complete.
  asio::awaitable<void> reset() {
    if (broken_) co_return;
    const bool sent = co_await send("RSET\r\n");
    if (sent) (void)co_await read_reply(cfg_.command_timeout);
  }

  const ClientContext& ctx_;
  const config::DeliveryConfig& cfg_;
  Destination dest_;
  const std::string lane_;  // how the JobSource knows this connection's shaping key
  std::unique_ptr<net::Stream> stream_;
  std::unique_ptr<smtp::ReplyParser> parser_ = std::make_unique<smtp::ReplyParser>();
  std::string buf_;
  size_t pos_ = 0, len_ = 0;
  Extensions ext_;
  std::string host_, ip_;
  size_t host_index_ = 0;      // of dest_.hosts: the host connected to
  std::string tls_;  // what TLS this connection has, for the log ("" in clear; JobReport::tls)
  bool next_mx_ = false;       // a 4xx at the banner or EHLO moves on to the next host
  bool ehlo_refused_ = false;  // hello() met such a 4xx
  bool loops_back_ = false;    // connect() skipped an MX host that is this server
  std::string last_error_;
  bool broken_ = false;
  uint32_t transactions_ = 0;
};

}  // namespace

asio::awaitable<void> run_connection(const ClientContext& ctx, Destination dest, Job first,
                                     std::string lane) {
  Connection c(ctx, std::move(dest), std::move(lane));
  co_await c.run(std::move(first));
}

}  // namespace sluice::outbound
