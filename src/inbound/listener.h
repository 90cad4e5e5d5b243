// The ESMTP listener: accepts connections, enforces the connection limits (in total and per
// client IP, answering the excess `421 4.7.0` at once), and runs one Session per connection on
// its own strand.
//
// Shutdown: stop() closes the acceptor and asks every session to finish; on_idle runs once the
// last session has ended after stop(). Threads: start() and stop() from any thread; the
// accounting below is guarded by mu_ because sessions end on their own strands.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "config/config.h"
#include "core/status.h"
#include "inbound/context.h"

namespace sluice::inbound {

class Session;

class Listener {
 public:
  Listener(boost::asio::io_context& ioc, InboundContext ctx);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and starts accepting. Errors name the address.
  Status start(const config::Endpoint& endpoint);
  void stop();

  // Runs (on an I/O thread) when stop() was called and no session is left.
  std::function<void()> on_idle;

  size_t session_count() const;

 private:
  boost::asio::awaitable<void> accept_loop();
  // Admits a connection under the limits, or returns the refusal to send.
  std::optional<std::string> admit(const std::string& ip);
  void release(const std::string& ip, Session* s);

  boost::asio::io_context& ioc_;
  const InboundContext ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;  // on its own strand: the accept loop and stop()

  mutable std::mutex mu_;  // guards the members below
  bool stopping_ = false;
  size_t total_ = 0;
  std::unordered_map<std::string, uint32_t> per_ip_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
};

}  // namespace sluice::inbound
