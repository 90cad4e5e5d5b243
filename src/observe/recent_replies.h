// The latest replies that were not a delivery, per provider (or site): what the dashboard shows
// under "latest replies", so that an operator reads a receiver's own words next to its numbers.
//
// Bounded: kPerProvider replies per provider, kProviders providers (the least recently heard
// leaves first). Thread-safe: add() from the queue manager's strand, json() from the HTTP
// listener's threads, under one short lock.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sluice::observe {

class RecentReplies {
 public:
  static constexpr size_t kPerProvider = 5;
  static constexpr size_t kProviders = 100;

  struct Reply {
    int64_t ts_ms = 0;
    std::string category;  // the classifier's
    std::string stage;     // where in the dialogue
    std::string reply;     // code, enhanced code, text
    std::string source;    // the egress source it came to
  };

  void add(const std::string& provider, Reply reply);
  // [{"provider": P, "replies": [{ts, category, stage, reply, source}, … newest first]}, …],
  // the most recently heard provider first.
  std::string json() const;

 private:
  mutable std::mutex mu_;
  std::list<std::string> order_;  // providers, most recent first
  struct Entry {
    std::list<std::string>::iterator at;
    std::deque<Reply> replies;  // newest first
  };
  std::unordered_map<std::string, Entry> by_provider_;
};

}  // namespace sluice::observe
