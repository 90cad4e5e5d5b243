#include "outbound/delivery.h"

namespace sluice::outbound {

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

Outcome outcome_of(const smtp::Reply& reply) {
  if (reply.code < 400) return Outcome::kDelivered;
  if (reply.code < 500) return Outcome::kTransient;
  return Outcome::kPermanent;
}

}  // namespace sluice::outbound
