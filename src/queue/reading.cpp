#include "queue/reading.h"

#include <algorithm>

namespace sluice::queue {
using classify::Action;
using outbound::RecipientResult;
using outbound::Stage;

namespace {

constexpr int64_t kRecentMs = 3000;  // the window of the delivered-rate measurement
// Unexplained refusals of messages that read as a rate limit: at least this many in kRecentMs,
// and at least 1 in kRateRefusalShare of the messages tried then (random failures are rarer),
// or any such burst once the key is paced by a learned rate.
constexpr size_t kRateRefusals = 5;
constexpr size_t kRateRefusalShare = 10;

void note_signal(Lane& lane, const classify::Verdict& v, std::string_view rule,
                 const RecipientResult& r, int64_t now) {
  lane.last_signal = r.reply.summary();
  lane.last_category = classify::category_name(v.category);
  lane.last_rule = rule;
  lane.last_stage = outbound::stage_name(r.stage);
  lane.last_signal_ms = now;
}

}  // namespace

Reading ReplyReader::read(Lane& lane, const RecipientResult& res, uint32_t transactions_before,
                          std::string_view provider, int64_t now) const {
  classify::Input in;
  in.stage = res.stage;
  in.reply = &res.reply;
  in.provider = provider;  // a view: the caller's string outlives the classification
  // Connections of the lane that work, other than the one that got this reply.
  const bool this_works = res.stage >= Stage::kMail;
  const uint32_t working = lane.established;
  const uint32_t others_working = working - (this_works && working ? 1u : 0u);
  in.others_open = others_working > 0;
  static const classify::Classifier kCodeOnly;
  Reading out;
  out.verdict = (classifier_ ? *classifier_ : kCodeOnly).classify(in);
  out.outage = read_behaviour(lane, res, transactions_before, others_working, out.verdict,
                              out.change, now);
  return out;
}

Outage ReplyReader::read_behaviour(Lane& lane, const RecipientResult& res,
                                   uint32_t transactions_before, uint32_t others_working,
                                   classify::Verdict& v, std::optional<shaping::Change>& change,
                                   int64_t now) const {
  // Only a refusal before the connection worked for anything (connect, banner, EHLO, STARTTLS,
  // or MAIL of its first transaction), soft, that the words did not explain as a throttle
  // signal of their own: what the receiver does then says what its words do not.
  const bool before_work = res.stage == Stage::kConnect || res.stage == Stage::kBanner ||
                           res.stage == Stage::kEhlo || res.stage == Stage::kStartTls ||
                           (res.stage == Stage::kMail && transactions_before == 0);
  const bool unexplained = !v.by_words || v.category == classify::Category::kOther ||
                           v.category == classify::Category::kNetwork;
  // The word model's guess (rule "model") is weaker than what the site does: behaviour reads
  // the site even when the guess is a throttle signal.
  const bool guessed = v.rule == "model";
  if (v.hard || v.action == Action::kNone || (classify::is_throttle(v.action) && !guessed) ||
      !unexplained)
    return Outage::kNone;
  if (!before_work) {
    // A message refused on a working connection, words explaining nothing: one is the message's
    // own trouble, but refusals that come in numbers while other messages go through track the
    // number of messages per time window — a rate limit, learned as from a known text.
    if (res.stage < Stage::kMail) return Outage::kNone;
    lane.refusals.push_back(now);
    while (lane.refusals.front() < now - kRecentMs) lane.refusals.pop_front();
    const auto delivered = static_cast<size_t>(std::count_if(
        lane.recent.begin(), lane.recent.end(), [&](int64_t t) { return t >= now - kRecentMs; }));
    const size_t refused = lane.refusals.size();
    const bool paced = lane.ctl->learned().message_rate > 0;
    if (refused >= kRateRefusals && (paced || refused * kRateRefusalShare >= refused + delivered)) {
      v.category = classify::Category::kRateLimit;
      v.action = Action::kReduceRate;
      v.rule = "behaviour: refusals track the message rate";
    }
    return Outage::kNone;
  }
  if (others_working > 0) {
    // Refused while other connections of the lane work: a connection limit, whatever the text
    // or code, or none at all (a hang-up) — learned exactly as from a known text.
    if (res.stage == Stage::kStartTls) return Outage::kNone;  // a TLS problem, not a count
    v.category = classify::Category::kConnectionLimit;
    v.action = Action::kReduceConnections;
    v.rule = "behaviour: refused while others work";
    return Outage::kNone;
  }
  // Nothing works: the site is unavailable from this source (Postfix's dead destination). One
  // probe at a time, on a backoff; the first that works releases the lane's messages. A refusal
  // at MAIL may be about the sender, not the site: it stays the message's own retry.
  if (res.stage == Stage::kMail) return Outage::kNone;
  v.rule = v.rule == "code" ? "behaviour: site unavailable" : v.rule;
  const Outage outage = lane.ctl->unavailable() ? Outage::kOngoing : Outage::kBegins;
  change = lane.ctl->on_unavailable(now);
  if (change) {
    note_signal(lane, v, "site unavailable", res, now);
    ++lane.refused_connections;
  }
  return outage;
}

void ReplyReader::delivered(Lane& lane, int64_t now) {
  ++lane.delivered;
  lane.recent.push_back(now);
}

void ReplyReader::trim(Lane& lane, int64_t now) {
  while (!lane.recent.empty() && lane.recent.front() < now - kRecentMs) lane.recent.pop_front();
}

std::optional<shaping::Change> ReplyReader::apply(Lane& lane, const classify::Verdict& v,
                                                  const RecipientResult& r,
                                                  uint32_t transactions_before, int64_t now) {
  note_signal(lane, v, v.rule, r, now);
  switch (v.action) {
    case Action::kReduceConnections: {
      ++lane.refused_connections;
      // The connection that got the reply is not one that works, whatever its stage.
      const bool this_works = r.stage >= Stage::kMail;
      const uint32_t working = lane.established - (this_works && lane.established ? 1 : 0);
      return lane.ctl->on_connection_limit(now, working);
    }
    case Action::kReduceRate: {
      // What was delivered in the last few seconds, over the span it took (at least 1 s): a
      // key that has just started is not credited with the seconds before it.
      size_t n = 0;
      int64_t oldest = now;
      for (auto t = lane.recent.rbegin(); t != lane.recent.rend() && *t >= now - kRecentMs; ++t) {
        ++n;
        oldest = *t;
      }
      const double span = std::max<double>(1000.0, static_cast<double>(now - oldest)) / 1000.0;
      return lane.ctl->on_rate_limit(now, static_cast<double>(n) / span);
    }
    case Action::kReduceDeliveries:
      return lane.ctl->on_deliveries_limit(now, transactions_before);
    case Action::kSuspend:
      return lane.ctl->on_reputation(now, r.reply.summary());
    default:
      return std::nullopt;
  }
}

}  // namespace sluice::queue
