#include "app/server.h"

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "app/version.h"

namespace sluice {
namespace asio = boost::asio;

namespace {

// Lifecycle records go to stderr as JSON lines, like the event log the listener will write.
void lifecycle(const char* event, const std::string& detail) {
  const std::time_t now = std::time(nullptr);
  char ts[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "{\"ts\":\"%s\",\"event\":\"%s\"%s%s}\n", ts, event,
               detail.empty() ? "" : ",", detail.c_str());
  std::fflush(stderr);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

struct Server::Impl {
  explicit Impl(config::Config c)
      : cfg(std::move(c)),
        threads(cfg.server.threads ? cfg.server.threads
                                   : std::max(1u, std::thread::hardware_concurrency())),
        ioc(static_cast<int>(threads)),
        work(asio::make_work_guard(ioc)),
        signals(ioc, SIGTERM, SIGINT),
        deadline(ioc) {}

  void wait_for_signal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (stopping) {
        lifecycle("ShutdownForced", "\"signal\":" + std::to_string(signo));
        ioc.stop();
        return;
      }
      begin_shutdown(signo);
    });
  }

  // Graceful phase: release the work guard so run() returns once every task has ended; the
  // deadline, or a second signal, forces the stop if they take longer than shutdown_grace.
  void begin_shutdown(int signo) {
    stopping = true;
    lifecycle("ShutdownStarted", "\"signal\":" + std::to_string(signo) + ",\"grace_ms\":" +
                                     std::to_string(cfg.server.shutdown_grace.count()));
    work.reset();
    if (active_tasks == 0) return finish();
    wait_for_signal();
    deadline.expires_after(cfg.server.shutdown_grace);
    deadline.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      lifecycle("ShutdownForced", "\"reason\":\"grace period over\"");
      ioc.stop();
    });
  }

  // Called when the last task has ended during shutdown: nothing is left to wait for.
  void finish() {
    signals.cancel();
    deadline.cancel();
  }

  config::Config cfg;
  unsigned threads;
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::signal_set signals;
  asio::steady_timer deadline;
  bool stopping = false;  // touched only from handlers on ioc's threads before tasks exist
  int active_tasks = 0;   // tasks (sessions, delivery loops) still running; none yet
};

Server::Server(config::Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Server::~Server() = default;

int Server::run() {
  Impl& s = *impl_;
  // The directories the spool and the log will live in exist before anything needs them.
  for (const std::filesystem::path& p : {std::filesystem::path(s.cfg.spool.path),
                                         std::filesystem::path(s.cfg.log.path).parent_path()}) {
    std::error_code ec;
    if (!p.empty()) std::filesystem::create_directories(p, ec);
    if (ec) {
      lifecycle("StartFailed",
                "\"path\":" + json_string(p.string()) + ",\"error\":" + json_string(ec.message()));
      return 1;
    }
  }
  s.wait_for_signal();
  lifecycle("Started", "\"version\":" + json_string(kVersion) + ",\"commit\":" +
                           json_string(kCommit) + ",\"config\":" + json_string(s.cfg.source) +
                           ",\"threads\":" + std::to_string(s.threads));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < s.threads; ++i) pool.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : pool) t.join();
  lifecycle("Stopped", "");
  return 0;
}

}  // namespace sluice
