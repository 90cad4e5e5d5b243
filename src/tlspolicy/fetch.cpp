#include "tlspolicy/fetch.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "core/text.h"

namespace sluice::tlspolicy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

constexpr size_t kMaxPolicy = 64 * 1024;

// One attempt at one address.
asio::awaitable<Fetched> fetch_from(const std::string& host, const std::string& address,
                                    uint16_t port, asio::ssl::context& ctx,
                                    config::Duration timeout) {
  Fetched f;
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) {
    f.error = "bad address " + address;
    co_return f;
  }
  beast::ssl_stream<beast::tcp_stream> stream(ex, ctx);
  SSL* ssl = stream.native_handle();
  SSL_set_tlsext_host_name(ssl, host.c_str());
  SSL_set1_host(ssl, host.c_str());  // the certificate must be valid for mta-sts.DOMAIN
  beast::get_lowest_layer(stream).expires_after(timeout);
  auto tuple = asio::as_tuple(asio::use_awaitable);
  auto [cec] = co_await beast::get_lowest_layer(stream).async_connect(
      asio::ip::tcp::endpoint(ip, port), tuple);
  if (cec) {
    f.error = host + "[" + address + "]:" + std::to_string(port) + ": " + cec.message();
    co_return f;
  }
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, tuple);
  if (hec) {
    const long v = SSL_get_verify_result(ssl);
    f.error = "TLS with " + host + ": " +
              (v != X509_V_OK ? std::string("certificate not valid: ") +
                                    X509_verify_cert_error_string(v)
                              : hec.message());
    co_return f;
  }
  bhttp::request<bhttp::empty_body> req(bhttp::verb::get, "/.well-known/mta-sts.txt", 11);
  req.set(bhttp::field::host, port == 443 ? host : host + ":" + std::to_string(port));
  req.set(bhttp::field::user_agent, "sluice");
  req.set(bhttp::field::connection, "close");
  auto [wec, wn] = co_await bhttp::async_write(stream, req, tuple);
  if (wec) {
    f.error = "sending the request to " + host + ": " + wec.message();
    co_return f;
  }
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxPolicy);
  parser.header_limit(16 * 1024);
  auto [rec, rn] = co_await bhttp::async_read(stream, buf, parser, tuple);
  if (rec) {
    f.error = "reading the policy from " + host + ": " + rec.message();
    co_return f;
  }
  const auto& res = parser.get();
  if (res.result_int() != 200) {  // redirects are not followed (section 3.3)
    f.error = "https://" + host + "/.well-known/mta-sts.txt answered HTTP " +
              std::to_string(res.result_int());
    co_return f;
  }
  const std::string type = to_lower(std::string(res[bhttp::field::content_type]));
  if (!type.starts_with("text/plain")) {
    f.error = "the policy is served as \"" + type + "\", not text/plain";
    co_return f;
  }
  f.ok = true;
  f.body = res.body();
  co_return f;
}

}  // namespace

Fetched fetch_policy(const std::string& domain, const std::vector<std::string>& addresses,
                     uint16_t port, asio::ssl::context& ctx, config::Duration timeout) {
  const std::string host = "mta-sts." + domain;
  Fetched result;
  result.error = "no address for " + host;
  for (const std::string& address : addresses) {
    asio::io_context ioc;
    asio::co_spawn(ioc, fetch_from(host, address, port, ctx, timeout),
                   [&](std::exception_ptr e, Fetched f) {
                     if (e) f.error = "fetching the policy failed";
                     result = std::move(f);
                   });
    ioc.run();
    if (result.ok) break;
  }
  return result;
}

}  // namespace sluice::tlspolicy
