#include "inbound/session.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstring>

#include "core/text.h"
#include "inbound/credentials.h"
#include "inbound/sender_policy.h"

namespace sluice::inbound {
namespace asio = boost::asio;
using smtp::Reply;

namespace {
constexpr size_t kReadChunk = 16 * 1024;  // the least room a read gets
constexpr auto kWriteTimeout = std::chrono::minutes(5);
}  // namespace

Session::Session(asio::ip::tcp::socket socket, const InboundContext& ctx, std::string client_ip)
    : ctx_(ctx),
      client_ip_(std::move(client_ip)),
      executor_(socket.get_executor()),
      stream_(std::move(socket)) {}

void Session::request_shutdown() {
  // Runs on the strand: the flag and the cancel must not race the session's own I/O.
  asio::post(executor_, [self = shared_from_this()] {
    self->shutdown_requested_ = true;
    if (self->waiting_for_command_) self->stream_.cancel();
  });
}

void Session::reply(uint16_t code, std::string_view enhanced, std::string_view text) {
  out_ += Reply::make(code, enhanced, text).wire();
}

void Session::reply(const Reply& r) {
  out_ += r.wire();
}

void Session::refuse(uint16_t code, std::string_view enhanced, std::string_view text) {
  reply(code, enhanced, text);
  ++errors_;
}

void Session::consume(size_t n) {
  pos_ += n;
  if (pos_ == len_) pos_ = len_ = 0;
}

asio::awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  const auto ec = co_await stream_.write(out_, kWriteTimeout);
  out_.clear();
  co_return !ec;
}

// Flushes pending replies (RFC 2920: before waiting for input), then reads more input.
asio::awaitable<bool> Session::fill(std::chrono::milliseconds timeout) {
  if (!co_await flush()) co_return false;
  // Make room: move the unread tail to the front, grow only when that is not enough.
  if (in_.size() - len_ < kReadChunk && pos_ > 0) {
    std::memmove(in_.data(), in_.data() + pos_, len_ - pos_);
    len_ -= pos_;
    pos_ = 0;
  }
  if (in_.size() - len_ < kReadChunk) in_.resize(std::max(2 * in_.size(), len_ + kReadChunk));
  size_t n = 0;
  const auto ec =
      co_await stream_.read_some(asio::buffer(in_.data() + len_, in_.size() - len_), n, timeout);
  len_ += n;
  if (!ec) co_return true;
  if (ec == asio::error::timed_out) {
    reply(421, "4.4.2", ctx_.hostname + " Error: timeout exceeded, closing connection");
    co_await flush();
  } else if (ec == asio::error::operation_aborted && shutdown_requested_) {
    reply(421, "4.3.2", ctx_.hostname + " Service shutting down, closing connection");
    co_await flush();
  }
  co_return false;
}

bool Session::client_error() {
  if (++errors_ < ctx_.smtp.max_errors) return false;
  reply(421, "4.7.0", ctx_.hostname + " Error: too many errors, closing connection");
  return true;
}

void Session::reset_transaction() {
  mail_.reset();
  rcpts_.clear();
  bdat_active_ = false;
  bdat_body_.clear();
  bdat_body_.shrink_to_fit();
  bdat_size_ = 0;
  bdat_too_big_ = false;
}

asio::awaitable<void> Session::run() {
  reply(220, "", ctx_.hostname + " ESMTP sluice");
  for (;;) {
    if (shutdown_requested_ && !mail_) {
      reply(421, "4.3.2", ctx_.hostname + " Service shutting down, closing connection");
      break;
    }
    const auto frame = framer_.next(unread());
    if (frame.kind == smtp::LineFramer::Kind::kNeedMore) {
      consume(frame.consumed);
      // command_timeout bounds a whole command line, not each read: a client that trickles a
      // byte at a time cannot hold the session longer.
      const auto now = std::chrono::steady_clock::now();
      if (unread().empty()) command_deadline_ = now + ctx_.smtp.command_timeout;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(command_deadline_ - now);
      waiting_for_command_ = true;
      const bool ok = co_await fill(std::max(left, std::chrono::milliseconds(1)));
      waiting_for_command_ = false;
      if (!ok) break;
      continue;
    }
    if (frame.kind == smtp::LineFramer::Kind::kTooLong) {
      consume(frame.consumed);
      reply(500, "5.5.2", "Error: line too long");
      if (client_error()) break;
      continue;
    }
    if (frame.kind == smtp::LineFramer::Kind::kBareLf) {
      consume(frame.consumed);
      reply(500, "5.5.2", "Error: bare <LF> received; commands end with <CR><LF>");
      if (client_error()) break;
      continue;
    }
    smtp::ParseContext pctx;
    pctx.smtputf8_transaction = mail_ && mail_->params.smtputf8;
    auto parsed = smtp::parse_command(frame.line, pctx);
    consume(frame.consumed);
    if (!parsed) {
      reply(parsed.error().reply);
      if (client_error()) break;
      continue;
    }
    if (co_await dispatch(*parsed) == Next::kClose) break;
  }
  co_await flush();
  stream_.close();
}

asio::awaitable<Session::Next> Session::dispatch(smtp::Command& cmd) {
  const size_t errors_before = errors_;
  Next next = Next::kContinue;
  if (auto* c = std::get_if<smtp::Ehlo>(&cmd)) {
    on_hello(c->domain, true);
  } else if (auto* h = std::get_if<smtp::Helo>(&cmd)) {
    on_hello(h->domain, false);
  } else if (auto* m = std::get_if<smtp::MailFrom>(&cmd)) {
    on_mail(*m);
  } else if (auto* r = std::get_if<smtp::RcptTo>(&cmd)) {
    on_rcpt(*r);
  } else if (std::holds_alternative<smtp::Data>(cmd)) {
    next = co_await on_data();
  } else if (auto* b = std::get_if<smtp::Bdat>(&cmd)) {
    next = co_await on_bdat(*b);
  } else if (std::holds_alternative<smtp::Rset>(cmd)) {
    reset_transaction();
    reply(250, "2.0.0", "Ok");
  } else if (std::holds_alternative<smtp::Noop>(cmd)) {
    reply(250, "2.0.0", "Ok");
  } else if (std::holds_alternative<smtp::Vrfy>(cmd)) {
    reply(252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery");
  } else if (std::holds_alternative<smtp::Expn>(cmd)) {
    refuse(502, "5.5.1", "EXPN not available");
  } else if (std::holds_alternative<smtp::Help>(cmd)) {
    reply(214, "2.0.0",
          "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH\n"
          "sluice: an outbound MTA");
  } else if (std::holds_alternative<smtp::Quit>(cmd)) {
    reply(221, "2.0.0", ctx_.hostname + " closing connection");
    next = Next::kClose;
  } else if (std::holds_alternative<smtp::StartTls>(cmd)) {
    next = co_await on_starttls();
  } else if (auto* a = std::get_if<smtp::Auth>(&cmd)) {
    next = co_await on_auth(*a);
  }
  // Handlers count their own error replies in errors_; the limit applies to all of them.
  if (next == Next::kContinue && errors_ > errors_before && errors_ >= ctx_.smtp.max_errors) {
    reply(421, "4.7.0", ctx_.hostname + " Error: too many errors, closing connection");
    next = Next::kClose;
  }
  co_return next;
}

void Session::on_hello(const std::string& domain, bool esmtp) {
  if (bdat_active_) {
    refuse(503, "5.5.1", "Error: EHLO during a BDAT transfer");
    return;
  }
  reset_transaction();
  greeted_ = true;
  esmtp_ = esmtp;
  helo_ = domain;
  if (!esmtp) {
    reply(250, "", ctx_.hostname);
    return;
  }
  std::string lines = ctx_.hostname + " greets " + domain;
  lines += "\nPIPELINING\nSIZE " + std::to_string(ctx_.smtp.max_message_size);
  lines += "\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nDSN\nCHUNKING";
  if (ctx_.tls && !stream_.tls()) lines += "\nSTARTTLS";
  if (ctx_.credentials && stream_.tls()) lines += "\nAUTH PLAIN LOGIN";
  lines += "\nHELP";
  reply(250, "", lines);
}

void Session::on_mail(smtp::MailFrom& mail) {
  if (!greeted_) {
    refuse(503, "5.5.1", "Error: send EHLO or HELO first");
    return;
  }
  if (mail_) {
    refuse(503, "5.5.1", "Error: nested MAIL command");
    return;
  }
  // Relay policy: sluice relays for its client networks and for authenticated clients only.
  if (auth_user_.empty() && !any_contains(ctx_.client_networks, client_ip_)) {
    if (ctx_.credentials) {
      refuse(530, "5.7.0", "Authentication required");
    } else {
      refuse(550, "5.7.1", "Relaying denied: " + client_ip_ + " is not an allowed client");
    }
    return;
  }
  if (!auth_user_.empty() && mail.sender &&
      !may_send_as(ctx_.smtp.senders, auth_user_, mail.sender->str())) {
    refuse(553, "5.7.1",
           "Sender address <" + mail.sender->str() + "> not owned by user " + auth_user_);
    return;
  }
  if (mail.params.size && *mail.params.size > ctx_.smtp.max_message_size) {
    refuse(552, "5.3.4", "Message size exceeds fixed maximum message size");
    return;
  }
  if (mail.params.body == smtp::Body::kBinaryMime) {
    refuse(555, "5.5.4", "BODY=BINARYMIME is not supported");
    return;
  }
  mail_ = std::move(mail);
  reply(250, "2.1.0", "Sender ok");
}

void Session::on_rcpt(smtp::RcptTo& rcpt) {
  if (!mail_) {
    refuse(503, "5.5.1", "Error: need MAIL before RCPT");
    return;
  }
  if (bdat_active_) {
    refuse(503, "5.5.1", "Error: RCPT during a BDAT transfer");
    return;
  }
  if (rcpts_.size() >= ctx_.smtp.max_recipients) {
    reply(452, "4.5.3", "Error: too many recipients");
    return;  // not a client error: RFC 5321 section 4.5.3.1.10 expects clients to send the rest
             // later
  }
  rcpts_.push_back(std::move(rcpt));
  reply(250, "2.1.5", "Recipient ok");
}

asio::awaitable<Session::Next> Session::on_starttls() {
  if (!ctx_.tls) {
    refuse(502, "5.5.1", "Error: STARTTLS not available");
    co_return Next::kContinue;
  }
  if (stream_.tls()) {
    refuse(503, "5.5.1", "Error: TLS already active");
    co_return Next::kContinue;
  }
  reply(220, "2.0.0", "Ready to start TLS");
  if (!co_await flush()) co_return Next::kClose;
  // Anything the client pipelined after STARTTLS was sent in clear: drop it (CVE-2011-0411).
  pos_ = len_ = 0;
  framer_ = smtp::LineFramer();
  const auto ec = co_await stream_.start_tls_server(*ctx_.tls, ctx_.smtp.command_timeout);
  if (ec) co_return Next::kClose;
  // RFC 3207 section 4.2: forget everything learned before TLS.
  greeted_ = false;
  esmtp_ = false;
  helo_.clear();
  reset_transaction();
  co_return Next::kContinue;
}

}  // namespace sluice::inbound
