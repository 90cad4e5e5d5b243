// What the queue manager hands the SMTP client and what comes back: one transaction's job and a
// result per recipient, each with the reply that decided it and the stage it came at.
//
// The client marks each result delivered, transient or permanent by its code (outcome_of); the
// queue manager classifies every reply fully (src/classify) and acts on the verdict.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "classify/stage.h"
#include "config/config.h"
#include "dns/destination.h"
#include "smtp/reply.h"
#include "spool/envelope.h"

namespace sluice::outbound {

using classify::Stage;
using classify::stage_name;

enum class Outcome : uint8_t { kDelivered, kTransient, kPermanent };
std::string_view outcome_name(Outcome o);

// The simple, code-based classifier: 2xx/3xx delivered, 4xx transient, 5xx permanent.
Outcome outcome_of(const smtp::Reply& reply);

struct RecipientResult {
  size_t index = 0;  // into Job::meta.recipients
  Outcome outcome = Outcome::kTransient;
  Stage stage = Stage::kConnect;
  smtp::Reply reply;
};

using dns::Destination;
using dns::Host;

struct Job {
  // The message, shared by all its jobs (read only: one copy of the recipient list however many
  // transactions it is split into).
  std::shared_ptr<const spool::MessageMeta> meta;
  std::vector<size_t> recipients;  // indices into meta.recipients, one domain, one transaction
  std::string body;                // as spooled
  uint64_t token = 0;              // the manager's handle for this job
  // A connection opened for this job may try the destination's next MX host when one refuses
  // at the banner (4xx, or closes before it), as RFC 5321 §5 asks. Set only while no other
  // connection to the site works, so that one host's connection limit never spills onto the
  // site's other hosts.
  bool next_mx_on_refusal = false;
};

struct JobReport {
  uint64_t token = 0;
  std::vector<RecipientResult> results;  // one per Job::recipients entry
  std::string remote_host;               // the host that gave the replies ("" if none answered)
  std::string remote_ip;
  uint32_t transactions_before = 0;  // completed on this connection before this job
  // The connection's TLS: "" in clear, else "TLSv1.3 TLS_AES_256_GCM_SHA384 verified (mta-sts)",
  // "… unverified: hostname mismatch (mta-sts testing)", "… dane-verified (dane)".
  std::string tls;
};

}  // namespace sluice::outbound
