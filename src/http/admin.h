// The HTTP listener (Boost.Beast, [http] listen, loopback by default): the admin endpoints,
// injection, metrics and the dashboard (doc/http.md). Access: with [http] api_token, a
// bearer token on every request (but /healthz); without one, loopback clients only.
//
//   GET /api/v1/sites           every shaping key: configured and learned limits, connections,
//                               last signal, suspension (JSON array)
//   GET /api/v1/sources         every egress source: address, pools, warm-up day, counts and
//                               caps per provider, its lanes' learned limits (JSON array)
//   GET /api/v1/messages/ID     one message: its spooled envelope and where the queue has it
//   GET /api/v1/replies         the latest refusals per provider (src/observe/recent_replies.h)
//   GET /api/v1/queue?by=KEY    what waits, by site, provider, source, pool, tenant, campaign or
//                               domain (src/queue/summary.cpp)
//   GET /, /dashboard/…         the live dashboard (dashboard/; its assets need no token: they
//                               hold no data, and the page sends the token with its requests)
//   POST /api/inject/v1         injection in KumoMTA's shape (src/inbound/inject.h)
//   GET|POST|DELETE /api/admin/{suspend,bounce,rebind,limit}/v1   operators' rules and limit
//                               overrides (src/queue/admin_rules.h, src/queue/dispatcher.h)
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
  std::function<void(std::function<void(std::string)>)> replies;  // JSON array
  // GET /api/v1/queue?by=KEY: the summary; answers an HTTP status and a JSON body.
  std::function<void(std::string by, std::function<void(int status, std::string body)>)> queue;
  // POST /api/inject/v1: the request body and the client's address; answers an HTTP status
  // and a JSON body.
  std::function<void(std::string body, std::string client_ip,
                     std::function<void(int status, std::string body)>)>
      inject;
  // /api/admin/{suspend,bounce,rebind,limit}/v1: the method, what ("suspend", …), the JSON
  // body; answers an HTTP status and a JSON body.
  std::function<void(std::string method, std::string what, std::string body,
                     std::function<void(int status, std::string body)>)>
      admin;
  // The message's JSON object, or "" when no message has that id.
  std::function<void(const std::string& id, std::function<void(std::string)>)> message;
};

struct AdminOptions {
  // Every request but /healthz must carry "Authorization: Bearer TOKEN"; "" = no token, and
  // then only loopback clients are served.
  std::string api_token;
  size_t max_body = 64 * 1024;  // request bodies beyond this get 413
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& ioc, AdminSources sources, AdminOptions options = {});
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
