// AUTH PLAIN (RFC 4616) and AUTH LOGIN for submission, offered only under TLS (RFC 4954).
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/base64.h"
#include "inbound/auth_throttle.h"
#include "inbound/credentials.h"
#include "inbound/session.h"

namespace sluice::inbound {
namespace asio = boost::asio;

namespace {

// PBKDF2 takes tens of milliseconds: it runs on the blocking pool, and the result comes back on
// the session's executor. (Plain handlers, not a co_spawned lambda: GCC 12 copies a coroutine
// lambda's closure bitwise, which corrupts captured std::strings.)
template <class Token>
auto async_verify(const Credentials& creds, asio::any_io_executor pool, std::string user,
                  std::string password, Token&& token) {
  return asio::async_initiate<Token, void(bool)>(
      [&creds, pool](auto handler, std::string u, std::string p) {
        auto back = asio::get_associated_executor(handler);
        asio::post(pool, [&creds, back, h = std::move(handler), u = std::move(u),
                          p = std::move(p)]() mutable {
          const bool ok = creds.verify(u, p);
          asio::post(back, [h = std::move(h), ok]() mutable { h(ok); });
        });
      },
      token, std::move(user), std::move(password));
}

}  // namespace

// Reads one line of a SASL exchange; nullopt when the connection is gone.
asio::awaitable<std::optional<std::string>> Session::read_auth_line() {
  for (;;) {
    const auto frame = framer_.next(unread());
    if (frame.kind == smtp::LineFramer::Kind::kNeedMore) {
      consume(frame.consumed);
      if (!co_await fill(ctx_.smtp.command_timeout)) co_return std::nullopt;
      continue;
    }
    std::string line(frame.line);
    const bool ok = frame.kind == smtp::LineFramer::Kind::kLine;
    consume(frame.consumed);
    co_return ok ? line : std::string("\x01");  // an impossible response: fails decoding
  }
}

asio::awaitable<Session::Next> Session::on_auth(const smtp::Auth& auth) {
  if (!ctx_.credentials) {
    refuse(502, "5.5.1", "Error: AUTH not available");
    co_return Next::kContinue;
  }
  if (!stream_.tls()) {
    refuse(538, "5.7.11", "Encryption required for requested authentication mechanism");
    co_return Next::kContinue;
  }
  if (!greeted_ || !esmtp_) {
    refuse(503, "5.5.1", "Error: send EHLO first");
    co_return Next::kContinue;
  }
  if (!auth_user_.empty()) {
    refuse(503, "5.5.1", "Error: already authenticated");
    co_return Next::kContinue;
  }
  if (mail_) {
    refuse(503, "5.5.1", "Error: AUTH not permitted during a mail transaction");
    co_return Next::kContinue;
  }
  if (ctx_.auth_throttle &&
      !ctx_.auth_throttle->allowed(client_ip_, std::chrono::steady_clock::now())) {
    // Password guessing: no more tries from this address for now, and no session to try in.
    reply(421, "4.7.0",
          ctx_.hostname + " Error: too many failed authentication attempts from " + client_ip_ +
              ", try again later");
    co_return Next::kClose;
  }
  if (auth.mechanism != "PLAIN" && auth.mechanism != "LOGIN") {
    refuse(504, "5.5.4", "Unrecognized authentication type");
    co_return Next::kContinue;
  }

  // Each step: the client's base64 answer, decoded; nullopt ends the session or the exchange.
  bool lost = false;
  auto step = [&](std::optional<std::string> initial,
                  std::string_view challenge) -> asio::awaitable<std::optional<std::string>> {
    std::string b64;
    if (initial) {
      b64 = *initial;
    } else {
      reply(334, "", challenge);
      auto line = co_await read_auth_line();
      if (!line) {
        lost = true;
        co_return std::nullopt;
      }
      b64 = std::move(*line);
    }
    if (b64 == "*") {
      refuse(501, "5.7.0", "Authentication cancelled");
      co_return std::nullopt;
    }
    if (b64 == "=") co_return std::string();
    auto decoded = base64_decode(b64);
    if (!decoded) refuse(501, "5.5.2", "Error: invalid base64 in authentication response");
    co_return decoded;
  };

  std::string user, password;
  if (auth.mechanism == "PLAIN") {
    auto msg = co_await step(auth.initial_response, "");
    if (!msg) co_return lost ? Next::kClose : Next::kContinue;
    // message = [authzid] NUL authcid NUL passwd
    const size_t a = msg->find('\0');
    const size_t b = a == std::string::npos ? a : msg->find('\0', a + 1);
    if (b == std::string::npos) {
      refuse(501, "5.5.2", "Error: malformed PLAIN response");
      co_return Next::kContinue;
    }
    const std::string authzid = msg->substr(0, a);
    user = msg->substr(a + 1, b - a - 1);
    password = msg->substr(b + 1);
    if (!authzid.empty() && authzid != user) {
      refuse(535, "5.7.8", "Authentication credentials invalid");
      co_return Next::kContinue;
    }
  } else {
    auto u = co_await step(auth.initial_response, "VXNlcm5hbWU6");  // "Username:"
    if (!u) co_return lost ? Next::kClose : Next::kContinue;
    auto p = co_await step(std::nullopt, "UGFzc3dvcmQ6");  // "Password:"
    if (!p) co_return lost ? Next::kClose : Next::kContinue;
    user = std::move(*u);
    password = std::move(*p);
  }

  const bool ok = co_await async_verify(*ctx_.credentials, ctx_.blocking, user, std::move(password),
                                        asio::use_awaitable);
  if (!ok) {
    if (ctx_.auth_throttle) ctx_.auth_throttle->failed(client_ip_, std::chrono::steady_clock::now());
    refuse(535, "5.7.8", "Authentication credentials invalid");
    co_return Next::kContinue;
  }
  if (ctx_.auth_throttle) ctx_.auth_throttle->succeeded(client_ip_);
  auth_user_ = user;
  reply(235, "2.7.0", "Authentication successful");
  co_return Next::kContinue;
}

}  // namespace sluice::inbound
