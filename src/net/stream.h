// A TCP connection that may turn into TLS mid-stream (STARTTLS), with a timeout on every read
// and write. Used by the listener's sessions now and by the SMTP client later.
//
// Expected outcomes come back as values: reads and writes return an error_code (a timeout is
// asio::error::timed_out and leaves the connection open for a last reply; a closed peer is
// asio::error::eof). Every call must come from the executor the socket was created on (the
// session's strand). TLS and timers stay in stream.cpp.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio::ssl {
class context;
}

struct ssl_st;  // OpenSSL's SSL

namespace sluice::net {

class Stream {
 public:
  using Duration = std::chrono::milliseconds;
  using error_code = boost::system::error_code;

  explicit Stream(boost::asio::ip::tcp::socket socket);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Reads what is available (at least one byte) into `into`; sets n.
  boost::asio::awaitable<error_code> read_some(boost::asio::mutable_buffer into, size_t& n,
                                               Duration timeout);
  // Writes all of `data`.
  boost::asio::awaitable<error_code> write(std::string_view data, Duration timeout);
  // Server side of a TLS handshake on the open connection.
  boost::asio::awaitable<error_code> start_tls_server(boost::asio::ssl::context& ctx,
                                                      Duration timeout);
  // Client side (STARTTLS towards a receiver); `server_name` goes in SNI, and with
  // `verify_host` the certificate must name it (with a verifying context: the chain too).
  // `prepare` runs on the SSL object before the handshake (DANE records, report-only checks).
  boost::asio::awaitable<error_code> start_tls_client(boost::asio::ssl::context& ctx,
                                                      const std::string& server_name,
                                                      Duration timeout, bool verify_host = false,
                                                      const std::function<void(ssl_st*)>& prepare = {});
  // Why the last client handshake's certificate was refused ("" when it was not).
  std::string verify_error() const;

  // Cancels pending operations (they complete with operation_aborted).
  void cancel();
  void close();

  bool tls() const;
  // "TLSv1.3 TLS_AES_256_GCM_SHA384", empty before TLS.
  std::string tls_description() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::net
