#include "http/admin.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

namespace sluice::embedded {
std::string_view dashboard_html();
std::string_view dashboard_js();
std::string_view dashboard_css();
std::string_view uplot_js();
std::string_view uplot_css();
}  // namespace sluice::embedded

namespace sluice::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr auto kIdle = std::chrono::seconds(30);

using Response = bhttp::response<bhttp::string_body>;

Response make(bhttp::status status, std::string body, unsigned version, bool keep_alive,
              const char* type = "application/json") {
  Response res{status, version};
  res.set(bhttp::field::server, "sluice");
  res.set(bhttp::field::content_type, type);
  res.set(bhttp::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::string error_json(std::string_view message) {
  std::string out = "{\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"}\n";
}

// The dashboard's files (dashboard/ and uPlot from dashboard/node_modules), compiled in.
struct Asset {
  const char* path;
  std::string_view (*content)();  // null: a redirect to the dashboard
  const char* type;
};
const Asset kAssets[] = {
    {"/", nullptr, ""},
    {"/dashboard", nullptr, ""},
    {"/dashboard/", embedded::dashboard_html, "text/html; charset=utf-8"},
    {"/dashboard/app.js", embedded::dashboard_js, "text/javascript; charset=utf-8"},
    {"/dashboard/style.css", embedded::dashboard_css, "text/css; charset=utf-8"},
    {"/dashboard/uPlot.iife.min.js", embedded::uplot_js, "text/javascript; charset=utf-8"},
    {"/dashboard/uPlot.min.css", embedded::uplot_css, "text/css; charset=utf-8"},
};
const Asset* dashboard_asset(std::string_view target) {
  for (const Asset& a : kAssets)
    if (target == a.path) return &a;
  return nullptr;
}

// "/api/admin/suspend/v1" → "suspend" (also bounce, rebind, limit); "" for anything else.
std::string admin_action(std::string_view target) {
  for (const char* what : {"suspend", "bounce", "rebind", "limit"}) {
    if (target == std::string("/api/admin/") + what + "/v1") return what;
  }
  return {};
}

// Waits for a callback-style source (a std::function taking a completion) as a coroutine.
// `start` by reference, named by the caller: GCC 12 may destroy non-trivial temporaries of a
// co_await expression twice.
template <class Start>
asio::awaitable<std::string> ask(const Start& start) {
  auto init = [start](auto handler) mutable {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    start([h](std::string s) {
      auto ex = asio::get_associated_executor(*h);
      asio::post(ex, [h, s = std::move(s)]() mutable { (*h)(std::move(s)); });
    });
  };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::string)>(
      std::move(init), asio::use_awaitable);
}

}  // namespace

struct AdminServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ioc, AdminSources sources, AdminOptions options)
      : ioc(ioc),
        sources(std::move(sources)),
        options(std::move(options)),
        acceptor(asio::make_strand(ioc)) {}

  // Whether the request may be served: the bearer token when one is configured (compared in
  // constant time), else a loopback client.
  bool allowed(const bhttp::request<bhttp::string_body>& req, const asio::ip::address& client) const {
    if (options.api_token.empty()) return client.is_loopback();
    const auto it = req.find(bhttp::field::authorization);
    if (it == req.end()) return false;
    const std::string_view given(it->value().data(), it->value().size());
    const std::string expected = "Bearer " + options.api_token;
    if (given.size() != expected.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < given.size(); ++i)
      diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
    return diff == 0;
  }

  using Answer = std::function<void(int, std::string)>;
  using Call = std::function<void(Answer)>;

  // A source that answers an HTTP status and a JSON body, as the response.
  asio::awaitable<Response> answered(const Call& call, unsigned v, bool ka) {
    int status = 500;
    auto start = [&call, &status](std::function<void(std::string)> done) {
      call([&status, done = std::move(done)](int st, std::string body) {
        status = st;
        done(std::move(body));
      });
    };
    std::string body = co_await ask(start);
    body.push_back('\n');
    co_return make(static_cast<bhttp::status>(status), std::move(body), v, ka);
  }

  static Response not_allowed(const char* allow, unsigned v, bool ka) {
    auto r = make(bhttp::status::method_not_allowed, error_json(std::string(allow) + " only"), v, ka);
    r.set(bhttp::field::allow, allow);
    return r;
  }

  asio::awaitable<Response> handle(const bhttp::request<bhttp::string_body>& req,
                                   const asio::ip::address& client) {
    const unsigned v = req.version();
    const bool ka = req.keep_alive();
    std::string target(req.target()), query;
    if (const size_t q = target.find('?'); q != std::string::npos) {
      query = target.substr(q + 1);
      target.resize(q);
    }
    if (const Asset* asset = dashboard_asset(target)) {
      if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
        co_return not_allowed("GET, HEAD", v, ka);
      if (!asset->content) {  // "/": the dashboard is the front page
        auto r = make(bhttp::status::found, "", v, ka, "text/plain");
        r.set(bhttp::field::location, "/dashboard/");
        co_return r;
      }
      auto r = make(bhttp::status::ok, std::string(asset->content()), v, ka, asset->type);
      r.set(bhttp::field::cache_control, "no-cache");
      co_return r;
    }
    if (target != "/healthz" && !allowed(req, client)) {
      if (options.api_token.empty()) {
        co_return make(bhttp::status::forbidden,
                       error_json("no [http] api_token is configured: loopback clients only"), v,
                       ka);
      }
      auto r = make(bhttp::status::unauthorized,
                    error_json("an Authorization: Bearer token is required"), v, ka);
      r.set(bhttp::field::www_authenticate, "Bearer realm=\"sluice\"");
      co_return r;
    }
    if (target == "/api/inject/v1") {
      if (req.method() != bhttp::verb::post) co_return not_allowed("POST", v, ka);
      const Call call = [this, &req, &client](Answer done) {
        sources.inject(req.body(), client.to_string(), std::move(done));
      };
      co_return co_await answered(call, v, ka);
    }
    if (const std::string what = admin_action(target); !what.empty()) {
      const auto m = req.method();
      if (m != bhttp::verb::get && m != bhttp::verb::post && m != bhttp::verb::delete_)
        co_return not_allowed("GET, POST, DELETE", v, ka);
      const Call call = [this, &req, what, method = std::string(bhttp::to_string(m))](Answer done) {
        sources.admin(method, what, req.body(), std::move(done));
      };
      co_return co_await answered(call, v, ka);
    }
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
      co_return not_allowed("GET, HEAD", v, ka);
    if (target == "/healthz") co_return make(bhttp::status::ok, "ok\n", v, ka, "text/plain");
    if (target == "/metrics") {
      auto start = [this](std::function<void(std::string)> done) { sources.metrics(std::move(done)); };
      std::string body = co_await ask(start);
      co_return make(bhttp::status::ok, std::move(body), v, ka,
                     "text/plain; version=0.0.4; charset=utf-8");
    }
    if (target == "/api/v1/sites" || target == "/api/v1/sources" || target == "/api/v1/replies") {
      auto start = [this, target](std::function<void(std::string)> done) {
        (target == "/api/v1/sites"     ? sources.sites
         : target == "/api/v1/sources" ? sources.sources
                                       : sources.replies)(std::move(done));
      };
      std::string body = co_await ask(start);
      body.push_back('\n');
      co_return make(bhttp::status::ok, std::move(body), v, ka);
    }
    if (target == "/api/v1/queue") {
      std::string by = "site";
      for (size_t at = 0; at < query.size();) {
        size_t end = query.find('&', at);
        if (end == std::string::npos) end = query.size();
        if (query.compare(at, 3, "by=") == 0) by = query.substr(at + 3, end - at - 3);
        at = end + 1;
      }
      const Call call = [this, by](Answer done) { sources.queue(by, std::move(done)); };
      co_return co_await answered(call, v, ka);
    }
    const std::string prefix = "/api/v1/messages/";
    if (target.starts_with(prefix) && target.size() > prefix.size()) {
      const std::string id = target.substr(prefix.size());
      auto start = [this, id](std::function<void(std::string)> done) {
        sources.message(id, std::move(done));
      };
      std::string body = co_await ask(start);
      if (body.empty()) {
        const std::string msg = "no message " + id + " in the queue";
        co_return make(bhttp::status::not_found, error_json(msg), v, ka);
      }
      body.push_back('\n');
      co_return make(bhttp::status::ok, std::move(body), v, ka);
    }
    const std::string msg = "no such endpoint: " + target;
    co_return make(bhttp::status::not_found, error_json(msg), v, ka);
  }

  // After refusing an oversize body: reads and discards what the client is still sending
  // (bounded: 5 s and 4x the limit) so that it can read the refusal instead of meeting a reset
  // (the "lingering close" of web servers).
  asio::awaitable<void> drain(beast::tcp_stream& stream) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 65536> scratch;
    size_t left = options.max_body * 4;
    stream.expires_after(std::chrono::seconds(5));
    while (left > 0) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch),
                                                     asio::as_tuple(asio::use_awaitable));
      if (ec || n == 0) break;
      left -= std::min(left, n);
    }
  }

  // `self` keeps the server's state alive as long as a connection uses it.
  asio::awaitable<void> session([[maybe_unused]] std::shared_ptr<Impl> self,
                                std::shared_ptr<beast::tcp_stream> ptr) {
    beast::tcp_stream& stream = *ptr;
    beast::flat_buffer buf;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(options.max_body);
      stream.expires_after(kIdle);
      auto [ec, n] = co_await bhttp::async_read(stream, buf, parser,
                                               asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
            ec != beast::error::timeout && ec != asio::error::operation_aborted) {
          Response bad =
              ec == bhttp::error::body_limit
                  ? make(bhttp::status::payload_too_large,
                         error_json("the request body is over " + std::to_string(options.max_body) +
                                    " octets"),
                         11, false)
                  : make(bhttp::status::bad_request, error_json(ec.message()), 11, false);
          stream.expires_after(kIdle);
          (void)co_await bhttp::async_write(stream, bad, asio::as_tuple(asio::use_awaitable));
          if (ec == bhttp::error::body_limit) co_await drain(stream);
        }
        break;
      }
      const auto& req = parser.get();
      beast::error_code peer_ec;
      const auto client = stream.socket().remote_endpoint(peer_ec).address();
      Response res = co_await handle(req, client);
      const bool keep = res.keep_alive() && !stopping;
      if (req.method() == bhttp::verb::head) {
        const auto length = res.body().size();
        res.body().clear();
        res.content_length(length);
      }
      stream.expires_after(kIdle);
      auto [wec, wn] = co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !keep) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::lock_guard lock(mu);
    open.erase(ptr);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      // Named: GCC 12 may destroy non-trivial temporaries of a co_await expression twice.
      auto strand = asio::make_strand(ioc);
      auto [ec, sock] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
      if (stopping) break;
      if (ec) {
        if (ec == asio::error::operation_aborted) break;
        continue;  // EMFILE and friends: keep serving
      }
      auto stream = std::make_shared<beast::tcp_stream>(std::move(sock));
      {
        std::lock_guard lock(mu);
        open.insert(stream);
      }
      asio::co_spawn(stream->get_executor(), session(self, stream), asio::detached);
    }
  }

  // Closes every open connection (each on its own strand): shutdown must not wait for idle
  // keep-alive clients.
  void close_all() {
    std::lock_guard lock(mu);
    for (const auto& s : open) {
      asio::post(s->get_executor(), [s] {
        beast::error_code ignored;
        s->socket().close(ignored);
      });
    }
  }

  asio::io_context& ioc;
  AdminSources sources;
  const AdminOptions options;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::set<std::shared_ptr<beast::tcp_stream>> open;  // guarded by mu
};

AdminServer::AdminServer(asio::io_context& ioc, AdminSources sources, AdminOptions options)
    : impl_(std::make_shared<Impl>(ioc, std::move(sources), std::move(options))) {}

AdminServer::~AdminServer() { stop(); }

Status AdminServer::start(const config::Endpoint& listen) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(listen.host == "localhost" ? "127.0.0.1" : listen.host,
                                           ec);
  if (ec) return error("http: " + listen.str() + ": " + ec.message());
  const tcp::endpoint ep(addr, listen.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return error("http: cannot listen on " + listen.str() + ": " + ec.message());
  asio::co_spawn(a.get_executor(), impl_->accept_loop(), asio::detached);
  return ok_status();
}

void AdminServer::stop() {
  auto impl = impl_;
  asio::post(impl->acceptor.get_executor(), [impl] {
    impl->stopping = true;
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->close_all();
  });
}

}  // namespace sluice::http
