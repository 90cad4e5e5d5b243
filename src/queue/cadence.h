// A campaign's cadence ([campaign.NAME]): its new messages go into delivery evenly instead of
// as one burst. With a window, the messages waiting are spread evenly over what is left of it
// (a burst of N at the window's start goes one every window/N); with a rate, one message per
// 1/rate. The first message of a campaign opens its window; one that comes after the window
// has passed opens a new one. Retries are not held again (the queue manager holds only
// messages not yet released).
// Pure and single-threaded, on made-up time (cadence_test.cpp); the queue manager's strand
// owns it, keeps the window starts in the spool database and arms one timer for next_release().
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "spool/envelope.h"

namespace sluice::queue {

class Cadence {
 public:
  explicit Cadence(std::map<std::string, config::Campaign> campaigns)
      : campaigns_(std::move(campaigns)) {}

  bool shaped(const std::string& campaign) const { return campaigns_.count(campaign) > 0; }
  // Whether this run knows the campaign's window yet (else the manager restores it first).
  bool known(const std::string& campaign) const { return states_.count(campaign) > 0; }
  // The window start a previous run saved.
  void restore(const std::string& campaign, int64_t start_ms);
  // A new message of a shaped campaign waits for its turn. Returns the window's start when
  // this message opened a new window (for the manager to save), else 0.
  int64_t hold(const std::string& campaign, spool::MessageId id, int64_t now_ms);
  // When the next message's turn comes; nullopt when none waits.
  std::optional<int64_t> next_release() const;
  // The messages whose turn has come by now_ms, campaigns in name order, each in arrival order.
  std::vector<spool::MessageId> release(int64_t now_ms);
  size_t waiting() const;

 private:
  struct State {
    std::deque<spool::MessageId> waiting;
    int64_t start_ms = 0;  // the window's start; 0: none yet
    std::optional<int64_t> last_release_ms;  // none: nothing released in this window
  };
  // When the campaign's next message may go (0: at once).
  int64_t due(const config::Campaign& c, const State& s) const;

  std::map<std::string, config::Campaign> campaigns_;
  std::map<std::string, State> states_;
};

}  // namespace sluice::queue
