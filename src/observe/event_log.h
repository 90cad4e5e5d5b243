// The event log: one JSON line per event (Reception now; Delivery, TransientFailure, Bounce,
// Expiration, ThrottleChange, Suspension, AdminAction as their stages land), appended to the
// file named by [log] path. Record fields are documented in doc/log.md.
//
// write() never blocks on the disk: it queues the line and a writer thread appends whatever has
// queued (gathering for up to 20 ms) with one write() and flushes it to the kernel (no fsync: the
// log is for people and tools; the spool is the durable record). Lines are written whole and in
// order.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace sluice::observe {

class EventLog {
 public:
  // Opens (creating, appending) the file; "-" means standard error.
  static Result<std::unique_ptr<EventLog>> open(const std::string& path);
  ~EventLog();  // writes what is queued, then closes
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // `line` is one complete JSON object ending in '\n' (JsonLine::finish()).
  void write(std::string line);
  // Opens the file again by its path before the next write (after logrotate moved it: SIGHUP);
  // when it cannot be opened, writing goes on to the old one and stderr says why.
  void reopen();

 private:
  EventLog(std::FILE* file, bool owned, std::string path);
  void writer_loop();

  std::FILE* file_;  // the writer thread's (replaced by reopen())
  const std::string path_;
  bool reopen_ = false;  // guarded by mu_
  bool owned_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::vector<std::string> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace sluice::observe
