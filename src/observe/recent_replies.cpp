#include "observe/recent_replies.h"

#include "core/json.h"

namespace sluice::observe {

void RecentReplies::add(const std::string& provider, Reply reply) {
  std::lock_guard lock(mu_);
  auto it = by_provider_.find(provider);
  if (it == by_provider_.end()) {
    if (by_provider_.size() >= kProviders) {
      by_provider_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(provider);
    it = by_provider_.emplace(provider, Entry{order_.begin(), {}}).first;
  } else {
    order_.splice(order_.begin(), order_, it->second.at);
  }
  std::deque<Reply>& replies = it->second.replies;
  replies.push_front(std::move(reply));
  if (replies.size() > kPerProvider) replies.pop_back();
}

std::string RecentReplies::json() const {
  std::lock_guard lock(mu_);
  std::string out = "[";
  for (const std::string& provider : order_) {
    std::string list = "[";
    for (const Reply& r : by_provider_.at(provider).replies) {
      if (list.size() > 1) list += ",";
      std::string line = JsonLine()
                             .str("ts", utc_timestamp(r.ts_ms))
                             .str("category", r.category)
                             .str("stage", r.stage)
                             .str("reply", r.reply)
                             .str("source", r.source)
                             .object();
      list += line;
    }
    list += "]";
    std::string entry = JsonLine().str("provider", provider).raw("replies", list).object();
    if (out.size() > 1) out += ",";
    out += entry;
  }
  return out + "]";
}

}  // namespace sluice::observe
