#include "outbound/delivery.h"

namespace sluice::outbound {

std::string_view stage_name(Stage s) {
  switch (s) {
    case Stage::kDns:
      return "dns";
    case Stage::kConnect:
      return "connect";
    case Stage::kBanner:
      return "banner";
    case Stage::kEhlo:
      return "ehlo";
    case Stage::kStartTls:
      return "starttls";
    case Stage::kMail:
      return "mail";
    case Stage::kRcpt:
      return "rcpt";
    case Stage::kData:
      return "data";
    case Stage::kEndOfData:
      return "end-of-data";
  }
  return "unknown";
}

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kDelivered:
      return "delivered";
    case Outcome::kTransient:
      return "transient";
    case Outcome::kPermanent:
      return "permanent";
  }
  return "unknown";
}

Outcome classify(const smtp::Reply& reply) {
  if (reply.code < 400) return Outcome::kDelivered;
  if (reply.code < 500) return Outcome::kTransient;
  return Outcome::kPermanent;
}

}  // namespace sluice::outbound
