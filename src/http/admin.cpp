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
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

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
  Impl(asio::io_context& ioc, AdminSources sources)
      : ioc(ioc), sources(std::move(sources)), acceptor(asio::make_strand(ioc)) {}

  asio::awaitable<Response> handle(const bhttp::request<bhttp::string_body>& req) {
    const unsigned v = req.version();
    const bool ka = req.keep_alive();
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
      auto r = make(bhttp::status::method_not_allowed, error_json("read-only: GET only"), v, ka);
      r.set(bhttp::field::allow, "GET, HEAD");
      co_return r;
    }
    std::string target(req.target());
    if (const size_t q = target.find('?'); q != std::string::npos) target.resize(q);
    if (target == "/healthz") co_return make(bhttp::status::ok, "ok\n", v, ka, "text/plain");
    if (target == "/metrics") {
      auto start = [this](std::function<void(std::string)> done) { sources.metrics(std::move(done)); };
      std::string body = co_await ask(start);
      co_return make(bhttp::status::ok, std::move(body), v, ka,
                     "text/plain; version=0.0.4; charset=utf-8");
    }
    if (target == "/api/v1/sites" || target == "/api/v1/sources") {
      auto start = [this, target](std::function<void(std::string)> done) {
        (target == "/api/v1/sites" ? sources.sites : sources.sources)(std::move(done));
      };
      std::string body = co_await ask(start);
      body.push_back('\n');
      co_return make(bhttp::status::ok, std::move(body), v, ka);
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

  // `self` keeps the server's state alive as long as a connection uses it.
  asio::awaitable<void> session([[maybe_unused]] std::shared_ptr<Impl> self,
                                std::shared_ptr<beast::tcp_stream> ptr) {
    beast::tcp_stream& stream = *ptr;
    beast::flat_buffer buf;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024);
      stream.expires_after(kIdle);
      auto [ec, n] = co_await bhttp::async_read(stream, buf, parser,
                                               asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
            ec != beast::error::timeout && ec != asio::error::operation_aborted) {
          Response bad = make(bhttp::status::bad_request, error_json(ec.message()), 11, false);
          stream.expires_after(kIdle);
          (void)co_await bhttp::async_write(stream, bad, asio::as_tuple(asio::use_awaitable));
        }
        break;
      }
      const auto& req = parser.get();
      Response res = co_await handle(req);
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
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::set<std::shared_ptr<beast::tcp_stream>> open;  // guarded by mu
};

AdminServer::AdminServer(asio::io_context& ioc, AdminSources sources)
    : impl_(std::make_shared<Impl>(ioc, std::move(sources))) {}

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
