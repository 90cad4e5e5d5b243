#include "net/tls.h"

#include <boost/asio/ssl/context.hpp>

namespace sluice::net {

std::shared_ptr<boost::asio::ssl::context> make_client_tls() {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx->set_verify_mode(ssl::verify_none);
  return ctx;
}

Result<std::shared_ptr<boost::asio::ssl::context>> make_verifying_client_tls(
    const std::string& ca_file) {
  namespace ssl = boost::asio::ssl;
  auto ctx = make_client_tls();
  boost::system::error_code ec;
  if (ca_file.empty())
    ctx->set_default_verify_paths(ec);
  else
    ctx->load_verify_file(ca_file, ec);
  if (ec) return error("TLS CA file " + (ca_file.empty() ? std::string("(system)") : ca_file) +
                       ": " + ec.message());
  ctx->set_verify_mode(ssl::verify_peer);
  // DANE (RFC 7672) is enabled per connection with SSL_dane_enable; the context must allow it.
  if (SSL_CTX_dane_enable(ctx->native_handle()) <= 0) return error("TLS: DANE is not available");
  return ctx;
}

Result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls(const std::string& cert_file,
                                                                   const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) return error("TLS certificate " + cert_file + ": " + ec.message());
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) return error("TLS key " + key_file + ": " + ec.message());
  return ctx;
}

}  // namespace sluice::net
