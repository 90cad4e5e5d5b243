// What every inbound session shares: configuration, the spool, the queue intake, the event log,
// credentials and TLS. Built once by the server before the listener starts; constant afterwards
// (the objects it points to are themselves thread-safe).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/cidr.h"

namespace boost::asio::ssl {
class context;
}
namespace sluice::spool {
class Spool;
}
namespace sluice::queue {
class Intake;
}
namespace sluice::observe {
class EventLog;
class Metrics;
}

namespace sluice::dkim {
class Signer;
}

namespace sluice::inbound {

class AuthThrottle;
class Credentials;

struct InboundContext {
  config::SmtpConfig smtp;
  config::EgressConfig egress;  // tenants by login, and the tag headers
  std::string hostname;
  std::vector<Cidr> client_networks;
  spool::Spool* spool = nullptr;
  queue::Intake* intake = nullptr;
  observe::EventLog* log = nullptr;
  observe::Metrics* metrics = nullptr;  // null: none kept
  const Credentials* credentials = nullptr;  // null: AUTH not offered
  AuthThrottle* auth_throttle = nullptr;     // failed AUTHs per client address (with credentials)
  boost::asio::ssl::context* tls = nullptr;  // null: STARTTLS not offered
  boost::asio::any_io_executor blocking;     // for CPU-heavy work (password hashing)
  // Signs messages whose From domain has keys, before they are stored; null: no [dkim.*].
  std::shared_ptr<const dkim::Signer> dkim;
};

}  // namespace sluice::inbound
