// The SMTP client: one outbound connection to a site, as a straight-line coroutine.
//
// It connects to the destination's hosts in order (MX preference, then address order) from the
// configured source address, reads the banner, says EHLO (HELO if refused), upgrades with
// STARTTLS when offered (or fails the job when the route requires TLS and it is not there), then
// runs transactions: MAIL, every RCPT and DATA pipelined when the server offers PIPELINING,
// the body dot-stuffed through smtp::DataEncoder, and a result per recipient. It keeps the
// connection for the site's next job (connection reuse) while the queue manager hands it one
// (it decides deliveries per connection and message pacing: shaping).
//
// A message that needs SMTPUTF8 or 8BITMIME fails cleanly (permanent, with the reason) when the
// server lacks the extension; one bigger than the server's SIZE likewise. Network errors and
// timeouts become transient results with a synthesized 4.4.x reply naming the stage.
//
// Threads: runs on its own strand; talks to the queue manager only through JobSource.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "outbound/delivery.h"

namespace boost::asio::ssl {
class context;
}

namespace sluice::outbound {

// The queue manager's side of a connection.
class JobSource {
 public:
  virtual ~JobSource() = default;
  // Connections name themselves by the `lane` they were started with (run_connection).
  // The next job for a connection that has completed `done` transactions, or nullopt when it
  // should close (nothing to do, or its deliveries are used up). May wait (message pacing).
  // Completes on the caller's executor.
  virtual boost::asio::awaitable<std::optional<Job>> next_job(const std::string& lane,
                                                              uint32_t done) = 0;
  // Results of a job. Thread-safe.
  virtual void report(JobReport report) = 0;
  // The connection works: banner, EHLO (and STARTTLS) accepted. Thread-safe.
  virtual void connection_established(const std::string& lane) = 0;
  // The connection has closed; `established` as reported before. Thread-safe.
  virtual void connection_closed(const std::string& lane, bool established) = 0;
};

struct ClientContext {
  config::DeliveryConfig delivery;
  std::string helo;                          // EHLO name
  boost::asio::ssl::context* tls = nullptr;  // client TLS context
  boost::asio::ssl::context* tls_verify = nullptr;  // for tls = "verify" (null: not configured)
  JobSource* source = nullptr;
  // sluice's own SMTP listener: an MX host that is this address and port is ourselves, a loop
  // (RFC 5321 section 5.1: the MX list points back here). Unset port: no check.
  std::string own_host;
  uint16_t own_port = 0;
};

// Runs one connection: delivers `first`, then whatever next_job() gives for the lane (the
// JobSource's name for the connection's shaping key).
boost::asio::awaitable<void> run_connection(const ClientContext& ctx, Destination dest, Job first,
                                            std::string lane);

}  // namespace sluice::outbound
