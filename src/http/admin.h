// The HTTP listener (Boost.Beast, [http] listen, loopback by default): read-only admin endpoints
// now; the injection API, /metrics and the dashboard later (doc/http.md).
//
//   GET /api/v1/sites           every shaping key: configured and learned limits, connections,
//                               last signal, suspension (JSON array)
//   GET /api/v1/sources         every egress source: address, pools, warm-up day, counts and
//                               caps per provider, its lanes' learned limits (JSON array)
//   GET /api/v1/messages/ID     one message: its spooled envelope and where the queue has it
//   GET /metrics                Prometheus text format (doc/metrics.md)
//   GET /healthz                "ok"
//
// Each connection is a coroutine on its own strand; requests are answered through callbacks
// (the queue manager answers on its strand). Beast stays inside admin.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "core/status.h"

namespace boost::asio {
class io_context;
}

namespace sluice::http {

// Where the answers come from. Each callback may complete on any thread.
struct AdminSources {
  std::function<void(std::function<void(std::string)>)> sites;    // JSON array
  std::function<void(std::function<void(std::string)>)> sources;  // JSON array
  std::function<void(std::function<void(std::string)>)> metrics;  // Prometheus text
  // The message's JSON object, or "" when no message has that id.
  std::function<void(const std::string& id, std::function<void(std::string)>)> message;
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& ioc, AdminSources sources);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  Status start(const config::Endpoint& listen);
  void stop();  // stops accepting and closes idle connections

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::http
