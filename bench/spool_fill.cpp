// Fills a spool with N deferred messages (for the memory benchmark): each has one recipient,
// a small body, and a next attempt a day away, as a queue full of deferred mail looks.
// Usage: spool_fill PATH COUNT
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "spool/rocks_spool.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: spool_fill PATH COUNT\n");
    return 2;
  }
  const uint64_t count = std::strtoull(argv[2], nullptr, 10);
  sluice::spool::RocksSpoolOptions o;
  o.path = argv[1];
  o.sync = false;  // filling a benchmark fixture, not accepting mail
  auto spool = sluice::spool::RocksSpool::open(o);
  if (!spool) {
    std::fprintf(stderr, "%s\n", spool.error().message.c_str());
    return 1;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string body = "Subject: deferred\r\n\r\n" + std::string(200, 'x') + "\r\n";
  std::mutex mu;
  std::condition_variable cv;
  uint64_t done = 0, failed = 0;
  constexpr uint64_t kWindow = 20'000;  // stores in flight at most
  for (uint64_t i = 0; i < count; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return i - done < kWindow; });
    }
    sluice::spool::MessageMeta m;
    m.id = (*spool)->next_id();
    m.received_ms = now;
    m.next_due_ms = now + 86'400'000;
    m.attempts = 1;
    m.sender = "bounces+" + std::to_string(i) + "@sender.example";
    m.recipients.push_back({"user" + std::to_string(i) + "@deferred.example", 0, "", ""});
    (*spool)->store(m, sluice::spool::Body{"", body}, [&](const sluice::Status& st) {
      std::lock_guard lock(mu);
      ++done;
      if (!st) ++failed;
      cv.notify_one();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done == count; });
  std::printf("stored %llu messages (%llu failed)\n", static_cast<unsigned long long>(count),
              static_cast<unsigned long long>(failed));
  return failed ? 1 : 0;
}
