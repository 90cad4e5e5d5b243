#include "net/stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <optional>

namespace sluice::net {
namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}

struct Stream::Impl {
  explicit Impl(asio::ip::tcp::socket s) : tcp(std::move(s)) {}
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : tcp; }

  beast::tcp_stream tcp;  // moved into `tls` by STARTTLS
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
};

Stream::Stream(asio::ip::tcp::socket socket) : impl_(std::make_unique<Impl>(std::move(socket))) {}
Stream::~Stream() = default;

asio::awaitable<Stream::error_code> Stream::read_some(asio::mutable_buffer into, size_t& n,
                                                      Duration timeout) {
  impl_->lowest().expires_after(timeout);
  error_code ec;
  if (impl_->tls) {
    std::tie(ec, n) = co_await impl_->tls->async_read_some(into, kTuple);
  } else {
    std::tie(ec, n) = co_await impl_->tcp.async_read_some(into, kTuple);
  }
  co_return ec;
}

asio::awaitable<Stream::error_code> Stream::write(std::string_view data, Duration timeout) {
  impl_->lowest().expires_after(timeout);
  error_code ec;
  size_t n = 0;
  const auto buf = asio::buffer(data.data(), data.size());
  if (impl_->tls) {
    std::tie(ec, n) = co_await asio::async_write(*impl_->tls, buf, kTuple);
  } else {
    std::tie(ec, n) = co_await asio::async_write(impl_->tcp, buf, kTuple);
  }
  co_return ec;
}

asio::awaitable<Stream::error_code> Stream::start_tls_server(asio::ssl::context& ctx,
                                                             Duration timeout) {
  impl_->tls.emplace(std::move(impl_->tcp), ctx);
  impl_->lowest().expires_after(timeout);
  auto [ec] = co_await impl_->tls->async_handshake(asio::ssl::stream_base::server, kTuple);
  co_return ec;
}

void Stream::cancel() {
  impl_->lowest().cancel();
}

void Stream::close() {
  error_code ignored;
  impl_->lowest().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  impl_->lowest().close();
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
