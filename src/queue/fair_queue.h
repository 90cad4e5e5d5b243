// A ready queue that is fair between tenants: one FIFO per tenant, served in turn (round robin,
// one job each), so that one tenant's million-message blast to a site does not starve another
// tenant's mail to the same site. Parking takes from the tenant holding the most jobs. Jobs
// with priority (a tenant configured for transactional mail) go before all others.
// Pure and single-threaded: the dispatcher's strand owns it (fair_queue_test.cpp).
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice::queue {

template <class Job>
class FairQueue {
 public:
  // Tenants whose jobs go first (transactional mail); the set outlives the queue.
  void prioritize(const std::set<std::string>* tenants) { priority_ = tenants; }

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
  // Removes and returns every job `pred` selects (admin actions).
  template <class Pred>
  std::vector<Job> remove_if(Pred pred) {
    std::vector<Job> out;
    for (auto it = tenants_.begin(); it != tenants_.end();) {
      auto& line = it->second;
      for (auto j = line.begin(); j != line.end();) {
        if (pred(*j)) {
          out.push_back(std::move(*j));
          j = line.erase(j);
          --size_;
        } else {
          ++j;
        }
      }
      it = line.empty() ? tenants_.erase(it) : std::next(it);
    }
    return out;
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
  using Map = std::map<std::string, std::deque<Job>>;
  // The tenant after the one served last, in name order, wrapping around; a priority tenant
  // with jobs before any other.
  typename Map::const_iterator next() const { return pick(tenants_, turn_, priority_); }
  typename Map::iterator next() { return pick(tenants_, turn_, priority_); }
  template <class M>
  static auto pick(M& tenants, const std::string& turn, const std::set<std::string>* priority) {
    auto start = tenants.upper_bound(turn);
    if (start == tenants.end()) start = tenants.begin();
    if (priority && !priority->empty()) {
      auto it = start;
      for (size_t n = tenants.size(); n > 0; --n) {
        if (priority->count(it->first)) return it;
        if (++it == tenants.end()) it = tenants.begin();
      }
    }
    return start;
  }

  std::map<std::string, std::deque<Job>> tenants_;  // never holds an empty line
  std::string turn_;  // the tenant served last
  size_t size_ = 0;
  const std::set<std::string>* priority_ = nullptr;
};

}  // namespace sluice::queue
