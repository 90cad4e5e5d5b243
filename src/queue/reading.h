// Reading a reply: the classifier's verdict (src/classify), completed by what the receiver does
// where its words say nothing, and the verdict's throttle signal applied to the lane (the
// shaping key) that got it. Pure over a Lane and the time given: no I/O, no clock of its own,
// so it is tested on made-up time (reading_test.cpp). The queue manager logs the changes it
// returns and acts on the verdict for the message.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "classify/classifier.h"
#include "outbound/delivery.h"
#include "queue/lane.h"
#include "shaping/controller.h"

namespace sluice::queue {

// Whether a reply found the lane's site unavailable (a dead destination), and if this reply is
// the one that found it (the outage's one charged attempt).
enum class Outage : uint8_t { kNone, kOngoing, kBegins };

struct Reading {
  classify::Verdict verdict;
  Outage outage = Outage::kNone;
  std::optional<shaping::Change> change;  // the lane found unavailable: for the log
};

class ReplyReader {
 public:
  // `classifier` null: the code-based fallback.
  explicit ReplyReader(const classify::Classifier* classifier) : classifier_(classifier) {}

  // Classifies a reply the lane got and reads the lane's behaviour: a refusal before the
  // connection worked becomes a connection-limit verdict while other connections of the lane
  // work, or marks the lane unavailable when nothing works; refusals of messages that come in
  // numbers become a rate-limit verdict. `transactions_before`: completed on its connection.
  Reading read(Lane& lane, const outbound::RecipientResult& res, uint32_t transactions_before,
               std::string_view provider, int64_t now_ms) const;
  // A recipient was delivered through the lane (the measured rate).
  static void delivered(Lane& lane, int64_t now_ms);
  // Forgets deliveries older than the measurement window.
  static void trim(Lane& lane, int64_t now_ms);
  // Applies a throttle verdict to the lane's controller; the change it made, if any.
  static std::optional<shaping::Change> apply(Lane& lane, const classify::Verdict& v,
                                              const outbound::RecipientResult& r,
                                              uint32_t transactions_before, int64_t now_ms);

 private:
  Outage read_behaviour(Lane& lane, const outbound::RecipientResult& res,
                        uint32_t transactions_before, uint32_t others_working,
                        classify::Verdict& v, std::optional<shaping::Change>& change,
                        int64_t now_ms) const;

  const classify::Classifier* classifier_;
};

}  // namespace sluice::queue
