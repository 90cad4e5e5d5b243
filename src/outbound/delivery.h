// What the queue manager hands the SMTP client and what comes back: one transaction's job and a
// result per recipient, each with the reply that decided it and the stage it came at.
//
// Every reply (real or synthesized for network errors) is classified here into delivered,
// transient or permanent by its code; the full classifier (issue #6) will refine this with
// categories and shaping actions at the same seam (classify()).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "dns/destination.h"
#include "smtp/reply.h"
#include "spool/envelope.h"

namespace sluice::outbound {

enum class Stage : uint8_t {
  kDns,
  kConnect,
  kBanner,
  kEhlo,
  kStartTls,
  kMail,
  kRcpt,
  kData,
  kEndOfData
};
std::string_view stage_name(Stage s);

enum class Outcome : uint8_t { kDelivered, kTransient, kPermanent };
std::string_view outcome_name(Outcome o);

// The simple, code-based classifier: 2xx/3xx delivered, 4xx transient, 5xx permanent.
Outcome classify(const smtp::Reply& reply);

struct RecipientResult {
  size_t index = 0;  // into Job::meta.recipients
  Outcome outcome = Outcome::kTransient;
  Stage stage = Stage::kConnect;
  smtp::Reply reply;
};

using dns::Destination;
using dns::Host;

struct Job {
  spool::MessageMeta meta;         // the message (a copy: the client reads it only)
  std::vector<size_t> recipients;  // indices into meta.recipients, one domain, one transaction
  std::string body;                // as spooled
  uint64_t token = 0;              // the manager's handle for this job
};

struct JobReport {
  uint64_t token = 0;
  std::vector<RecipientResult> results;  // one per Job::recipients entry
  std::string remote_host;               // the host that gave the replies ("" if none answered)
  std::string remote_ip;
};

}  // namespace sluice::outbound
