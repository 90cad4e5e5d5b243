#include "net/stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>

namespace sluice::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}

// Timeouts cancel the pending operation (they never close the socket), so the session can
// still say "421 4.4.2 timeout" before closing. A generation number keeps a timer that fired
// just as its operation completed from cancelling the next one.
struct Stream::Impl {
  explicit Impl(tcp::socket s) : timer(s.get_executor()), sock(std::move(s)) {}

  tcp::socket& lowest() { return tls ? tls->next_layer() : sock; }

  void arm(Duration d) {
    timed_out = false;
    const uint64_t gen = ++generation;
    timer.expires_after(d);
    timer.async_wait([this, gen](const error_code& ec) {
      if (ec) return;  // cancelled (possibly after *this is gone): touch nothing
      if (gen != generation) return;
      timed_out = true;
      error_code ignored;
      lowest().cancel(ignored);
    });
  }

  error_code disarm(error_code ec) {
    ++generation;
    timer.cancel();
    return timed_out ? error_code(asio::error::timed_out) : ec;
  }

  asio::steady_timer timer;
  tcp::socket sock;  // moved into `tls` by STARTTLS
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  uint64_t generation = 0;
  bool timed_out = false;
};

Stream::Stream(tcp::socket socket) : impl_(std::make_unique<Impl>(std::move(socket))) {}
Stream::~Stream() = default;

asio::awaitable<Stream::error_code> Stream::read_some(asio::mutable_buffer into, size_t& n,
                                                      Duration timeout) {
  impl_->arm(timeout);
  error_code ec;
  if (impl_->tls) {
    std::tie(ec, n) = co_await impl_->tls->async_read_some(into, kTuple);
  } else {
    std::tie(ec, n) = co_await impl_->sock.async_read_some(into, kTuple);
  }
  co_return impl_->disarm(ec);
}

asio::awaitable<Stream::error_code> Stream::write(std::string_view data, Duration timeout) {
  impl_->arm(timeout);
  error_code ec;
  size_t n = 0;
  const auto buf = asio::buffer(data.data(), data.size());
  if (impl_->tls) {
    std::tie(ec, n) = co_await asio::async_write(*impl_->tls, buf, kTuple);
  } else {
    std::tie(ec, n) = co_await asio::async_write(impl_->sock, buf, kTuple);
  }
  co_return impl_->disarm(ec);
}

asio::awaitable<Stream::error_code> Stream::start_tls_server(asio::ssl::context& ctx,
                                                             Duration timeout) {
  impl_->tls.emplace(std::move(impl_->sock), ctx);
  impl_->arm(timeout);
  auto [ec] = co_await impl_->tls->async_handshake(asio::ssl::stream_base::server, kTuple);
  co_return impl_->disarm(ec);
}

asio::awaitable<Stream::error_code> Stream::start_tls_client(asio::ssl::context& ctx,
                                                             const std::string& server_name,
                                                             Duration timeout, bool verify_host,
                                                             const std::function<void(ssl_st*)>& prepare) {
  impl_->tls.emplace(std::move(impl_->sock), ctx);
  if (!server_name.empty())
    SSL_set_tlsext_host_name(impl_->tls->native_handle(), server_name.c_str());
  if (verify_host) SSL_set1_host(impl_->tls->native_handle(), server_name.c_str());
  if (prepare) prepare(impl_->tls->native_handle());
  impl_->arm(timeout);
  auto [ec] = co_await impl_->tls->async_handshake(asio::ssl::stream_base::client, kTuple);
  co_return impl_->disarm(ec);
}

std::string Stream::verify_error() const {
  if (!impl_->tls) return {};
  const long r = SSL_get_verify_result(impl_->tls->native_handle());
  return r == X509_V_OK ? std::string() : X509_verify_cert_error_string(r);
}

void Stream::cancel() {
  error_code ignored;
  impl_->lowest().cancel(ignored);
}

void Stream::close() {
  error_code ignored;
  impl_->timer.cancel();
  impl_->lowest().shutdown(tcp::socket::shutdown_both, ignored);
  impl_->lowest().close(ignored);
}

bool Stream::tls() const {
  return impl_->tls.has_value();
}

std::string Stream::tls_description() const {
  if (!impl_->tls) return {};
  SSL* ssl = impl_->tls->native_handle();
  return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
}

}  // namespace sluice::net
