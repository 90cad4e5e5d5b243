// TLS contexts built from the configuration (OpenSSL 3 through Asio): TLS 1.2 and later only.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"

namespace boost::asio::ssl {
class context;
}

namespace sluice::net {

// A client context for opportunistic STARTTLS: TLS 1.2+, no certificate verification (as
// Postfix's smtp_tls_security_level = may; verification policies come with routes later).
std::shared_ptr<boost::asio::ssl::context> make_client_tls();
// A client context that verifies: the peer's chain must lead to a CA of `ca_file` (PEM), or of
// the system's store when it is ""; the host name is checked per connection
// (Stream::start_tls_client with verify_host).
Result<std::shared_ptr<boost::asio::ssl::context>> make_verifying_client_tls(const std::string& ca_file);

// A server context with the PEM certificate chain and private key; errors name the file.
Result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls(const std::string& cert_file,
                                                                   const std::string& key_file);

}  // namespace sluice::net
