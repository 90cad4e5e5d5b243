// What every way in does once the spool has a message durably (the SMTP session after DATA,
// the injection API): hand it to the queue, count it (metrics) and log its Reception record
// (doc/log.md).
#pragma once

#include <string>
#include <string_view>

#include "inbound/context.h"
#include "spool/envelope.h"

namespace sluice::inbound {

void accepted(const InboundContext& ctx, const spool::MessageMeta& meta,
              const std::string& message_id, std::string_view protocol, bool tls);

// A tag as logs and the queue keep it: printable ASCII, at most 64 octets.
std::string bounded_tag(std::string_view v);

}  // namespace sluice::inbound
