// The running server: owns the io_context and its threads, and the shutdown sequence.
//
// Shutdown is two-phase, as in the Boost.Beast examples: on the first SIGTERM or SIGINT the
// server stops taking new work and lets running tasks finish for up to server.shutdown_grace;
// then (or on a second signal) it stops the io_context and whatever is left is cut off. The
// spool makes the forced phase safe: nothing acknowledged lives only in memory.
//
// Stages (listener, delivery) plug in as tasks: a task is counted from start to end so the
// graceful phase knows when nothing is left. Asio stays out of this header.
// run() is called once, from main's thread.
#pragma once

#include <memory>

#include "config/config.h"

namespace sluice {

class Server {
 public:
  explicit Server(config::Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Runs until shut down by a signal; returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
