#include "inbound/listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "inbound/session.h"
#include "smtp/reply.h"

namespace sluice::inbound {
namespace asio = boost::asio;
using asio::ip::tcp;

Listener::Listener(asio::io_context& ioc, InboundContext ctx)
    : ioc_(ioc), ctx_(std::move(ctx)), acceptor_(asio::make_strand(ioc)) {}

Listener::~Listener() = default;

Status Listener::start(const config::Endpoint& endpoint) {
  boost::system::error_code ec;
  const auto host = endpoint.host == "localhost" ? std::string("127.0.0.1") : endpoint.host;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return error("smtp listen " + endpoint.str() + ": " + ec.message());
  const tcp::endpoint ep(address, endpoint.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return error("smtp listen " + endpoint.str() + ": " + ec.message());
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  return ok_status();
}

void Listener::stop() {
  std::vector<std::shared_ptr<Session>> live;
  bool idle = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [_, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    idle = total_ == 0;
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  for (auto& s : live) s->request_shutdown();
  if (idle && on_idle) asio::post(ioc_, on_idle);
}

size_t Listener::session_count() const {
  std::lock_guard lock(mu_);
  return total_;
}

std::optional<std::string> Listener::admit(const std::string& ip) {
  std::lock_guard lock(mu_);
  if (stopping_) return ctx_.hostname + " Service shutting down";
  if (total_ >= ctx_.smtp.max_connections)
    return ctx_.hostname + " Too many connections, try again later";
  uint32_t& n = per_ip_[ip];
  if (n >= ctx_.smtp.max_connections_per_ip) {
    return "Too many concurrent connections from this IP, try again later";
  }
  ++n;
  ++total_;
  return std::nullopt;
}

void Listener::release(const std::string& ip, Session* s) {
  bool idle = false;
  {
    std::lock_guard lock(mu_);
    sessions_.erase(s);
    if (auto it = per_ip_.find(ip); it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
    --total_;
    idle = stopping_ && total_ == 0;
  }
  if (idle && on_idle) on_idle();
}

asio::awaitable<void> Listener::accept_loop() {
  // Out of descriptors (EMFILE, ENFILE) or memory, accept fails at once for as long as the
  // shortage lasts: wait before trying again, longer each time, instead of spinning. The
  // connections already open keep being served, and free descriptors as they end.
  constexpr auto kFirstPause = std::chrono::milliseconds(10);
  constexpr auto kLongestPause = std::chrono::milliseconds(1000);
  auto pause = kFirstPause;
  asio::steady_timer timer(acceptor_.get_executor());
  for (;;) {
    // Each connection gets its own strand: its session's state is touched nowhere else.
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_),
                                                        asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      if (pause == kFirstPause) {
        std::fprintf(stderr, "sluice: accept failed (%s): pausing new connections\n",
                     ec.message().c_str());
      }
      timer.expires_after(pause);
      (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      pause = std::min(pause * 2, kLongestPause);
      continue;
    }
    pause = kFirstPause;
    boost::system::error_code pec;
    const auto peer = socket.remote_endpoint(pec);
    if (pec) continue;
    std::string ip = peer.address().to_string();
    if (peer.address().is_v6() && peer.address().to_v6().is_v4_mapped()) {
      ip = asio::ip::make_address_v4(asio::ip::v4_mapped, peer.address().to_v6()).to_string();
    }
    if (auto refusal = admit(ip)) {
      // Said at the banner, as receivers do; then closed. The write is best effort.
      auto text = std::make_shared<std::string>(smtp::Reply::make(421, "4.7.0", *refusal).wire());
      auto sock = std::make_shared<tcp::socket>(std::move(socket));
      asio::async_write(*sock, asio::buffer(*text), [sock, text](auto, auto) {
        boost::system::error_code ignored;
        sock->shutdown(tcp::socket::shutdown_both, ignored);
        sock->close(ignored);
      });
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), ctx_, ip);
    {
      std::lock_guard lock(mu_);
      sessions_[session.get()] = session;
    }
    auto executor = session->executor();
    asio::co_spawn(executor, session->run(), [this, ip, session](std::exception_ptr e) {
      // Expected outcomes are values inside the session; this is a surprise.
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          std::fprintf(stderr, "sluice: session %s ended by exception: %s\n", ip.c_str(),
                       ex.what());
        }
      }
      release(ip, session.get());
    });
  }
}

}  // namespace sluice::inbound
