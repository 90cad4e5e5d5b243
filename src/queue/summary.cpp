// The queue summary (GET /api/v1/queue?by=…, `sluice queue summary`): what waits, grouped by
// site, provider, source, pool, tenant, campaign or recipient domain, in flight and scheduled.
//
// In flight, jobs say where recipients wait (site, pool, and the source once a connection took
// them). Scheduled messages are read back from the spool for anything but their tenant, at
// most kMaxReads of them (the rest are counted as not read): the summary is an operator's
// look, never a scan of a huge queue on the strand.
#include <algorithm>
#include <boost/asio/post.hpp>
#include <map>

#include "core/json.h"
#include "core/text.h"
#include "queue/dispatcher.h"
#include "queue/in_flight.h"
#include "spool/spool.h"

namespace sluice::queue {
namespace {

constexpr size_t kMaxReads = 100'000;

struct Group {
  uint64_t messages = 0, recipients = 0, in_flight = 0, scheduled = 0;
};

std::string domain_of(const std::string& address) {
  const size_t at = address.rfind('@');
  return at == std::string::npos ? std::string() : to_lower(address.substr(at + 1));
}

}  // namespace

const std::vector<std::string>& Manager::summary_keys() {
  static const std::vector<std::string> keys = {"site",   "provider", "source", "pool",
                                                "tenant", "campaign", "domain"};
  return keys;
}

void Manager::queue_summary(std::string by, std::function<void(int, std::string)> done) {
  boost::asio::post(strand_, [this, by = std::move(by), done = std::move(done)] {
    const auto& keys = summary_keys();
    if (std::find(keys.begin(), keys.end(), by) == keys.end()) {
      std::string msg = JsonLine().str("error", "by: one of site, provider, source, pool, tenant, "
                                                "campaign, domain").object();
      return done(400, msg);
    }
    std::map<std::string, Group> groups;
    // Counts a message's recipients under each key once per message.
    auto add = [&](const std::map<std::string, uint64_t>& per_key, bool scheduled) {
      for (const auto& [key, recipients] : per_key) {
        Group& g = groups[key];
        ++g.messages;
        g.recipients += recipients;
        ++(scheduled ? g.scheduled : g.in_flight);
      }
    };
    // In flight: by the message's tags or domains, or by where its jobs wait.
    std::map<uint64_t, std::map<std::string, uint64_t>> by_jobs;
    if (by == "site" || by == "provider" || by == "source" || by == "pool") {
      for (const auto& [token, ref] : dispatcher_->jobs()) {
        std::string key = ref.site;
        if (by == "provider") {
          const SiteState* s = dispatcher_->site(ref.site);
          key = s ? s->dest.provider : std::string();
        } else if (by == "source") {
          const Lane* l = ref.lane.empty() ? nullptr : dispatcher_->lane(ref.lane);
          key = l ? l->source : "(waiting for a connection)";
        } else if (by == "pool") {
          key = ref.pool;
        }
        by_jobs[ref.message][key] += ref.recipients;
      }
    }
    for (const auto& [id, m] : in_flight_) {
      std::map<std::string, uint64_t> per_key;
      if (auto it = by_jobs.find(id); it != by_jobs.end()) {
        per_key = it->second;
      } else if (by == "tenant" || by == "campaign" || by == "domain") {
        for (size_t i = 0; i < m->meta.recipients.size(); ++i) {
          if (m->results[i]) continue;  // settled in this round
          const std::string key = by == "tenant"     ? m->meta.tenant
                                  : by == "campaign" ? m->meta.campaign
                                                     : domain_of(m->meta.recipients[i].address);
          ++per_key[key];
        }
      } else {
        per_key["(resolving)"] = m->meta.recipients.size();
      }
      add(per_key, false);
    }
    // Scheduled: read back, bounded.
    uint64_t not_read = 0, reads = 0;
    for (const auto& e : queue_.drain()) {
      queue_.push(e.tenant, e.due_ms, e.id);
      std::map<std::string, uint64_t> per_key;
      if (by == "tenant" || reads >= kMaxReads) {
        if (by != "tenant") {
          ++not_read;
          continue;
        }
        per_key[e.tenant] = 1;  // recipients unknown without a read: counted as one
        add(per_key, true);
        continue;
      }
      ++reads;
      auto meta = spool_.read_meta(e.id);
      if (!meta) continue;
      for (const auto& r : meta->recipients) {
        const std::string domain = domain_of(r.address);
        std::string key;
        if (by == "campaign") {
          key = meta->campaign;
        } else if (by == "domain") {
          key = domain;
        } else if (by == "pool") {
          key = pool_for(*meta);
        } else if (by == "source") {
          key = "(scheduled)";
        } else {
          const SiteState* s = dispatcher_->site_of_domain(domain);
          key = !s ? "(not resolved)" : by == "site" ? s->name : s->dest.provider;
        }
        ++per_key[key];
      }
      add(per_key, true);
    }
    std::vector<std::pair<std::string, Group>> sorted(groups.begin(), groups.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
      return a.second.recipients > b.second.recipients;
    });
    std::string list = "[";
    for (const auto& [name, g] : sorted) {
      if (list.size() > 1) list += ",";
      std::string line = JsonLine()
                             .str("name", name)
                             .unum("messages", g.messages)
                             .unum("recipients", g.recipients)
                             .unum("in_flight", g.in_flight)
                             .unum("scheduled", g.scheduled)
                             .object();
      list += line;
    }
    std::string out = JsonLine()
                          .str("by", by)
                          .unum("in_flight", in_flight_.size())
                          .unum("scheduled", queue_.size())
                          .unum("scheduled_not_read", not_read)
                          .raw("groups", list + "]")
                          .object();
    done(200, out);
  });
}

}  // namespace sluice::queue
