// A ready queue that is fair between tenants: one FIFO per tenant, served in turn (round robin,
// one job each), so that one tenant's million-message blast to a site does not starve another
// tenant's mail to the same site. Parking takes from the tenant holding the most jobs. Jobs
// with priority (a tenant configured for transactional mail) go before all others.
// Pure and single-threaded: the dispatcher's strand owns it (fair_queue_test.cpp).
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <utility>

namespace sluice::queue {

template <class Job>
class FairQueue {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  void push_back(const std::string& tenant, Job job) { lane(tenant).push_back(std::move(job)); }
  // Back at the head of its tenant's line (it was next: a throttled job returning).
  void push_front(const std::string& tenant, Job job) { lane(tenant).push_front(std::move(job)); }

  // The job pop_front() would return.
  const Job& front() const { return next()->second.front(); }
  Job pop_front() {
    auto it = next();
    Job job = std::move(it->second.front());
    it->second.pop_front();
    --size_;
    turn_ = it->first;
    if (it->second.empty()) tenants_.erase(it);
    return job;
  }
  // From the end of the longest line (parking sends the biggest backlog's last jobs away first).
  Job pop_back() {
    auto longest = tenants_.begin();
    for (auto it = tenants_.begin(); it != tenants_.end(); ++it) {
      if (it->second.size() > longest->second.size()) longest = it;
    }
    Job job = std::move(longest->second.back());
    longest->second.pop_back();
    --size_;
    if (longest->second.empty()) tenants_.erase(longest);
    return job;
  }
  // Jobs waiting per tenant (admin views).
  std::map<std::string, size_t> sizes() const {
    std::map<std::string, size_t> out;
    for (const auto& [t, q] : tenants_) out[t] = q.size();
    return out;
  }
  template <class Fn>
  void for_each(Fn fn) const {
    for (const auto& [t, q] : tenants_) {
      for (const auto& job : q) fn(job);
    }
  }

 private:
  std::deque<Job>& lane(const std::string& tenant) {
    ++size_;
    return tenants_[tenant];
  }
  // The tenant after the one served last, in name order, wrapping around.
  typename std::map<std::string, std::deque<Job>>::const_iterator next() const {
    auto it = tenants_.upper_bound(turn_);
    return it == tenants_.end() ? tenants_.begin() : it;
  }
  typename std::map<std::string, std::deque<Job>>::iterator next() {
    auto it = tenants_.upper_bound(turn_);
    return it == tenants_.end() ? tenants_.begin() : it;
  }

  std::map<std::string, std::deque<Job>> tenants_;  // never holds an empty line
  std::string turn_;  // the tenant served last
  size_t size_ = 0;
};

}  // namespace sluice::queue
