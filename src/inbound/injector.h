// The injection API's back end: a parsed request (src/inbound/inject.h) becomes one spooled
// message per recipient, with the same durability as SMTP — the answer (200) comes only after
// the spool's synced write of every message. Bad content is refused (422) before anything is
// stored; a spool that cannot accept (a full disk) gives 503 and stores nothing new that it
// reports as failed. The response is KumoMTA's: {success_count, fail_count, failed_recipients,
// errors}.
// Thread-safe: each call is independent; completions run on the spool's callback thread.
#pragma once

#include <functional>
#include <string>

#include "inbound/context.h"

namespace sluice::inbound {

class Injector {
 public:
  // `ctx` as the SMTP listener's (spool, intake, log, metrics, limits, egress tags); it must
  // outlive the injector.
  explicit Injector(const InboundContext& ctx) : ctx_(ctx) {}

  void inject(std::string body, std::string client_ip,
              std::function<void(int status, std::string body)> done);

 private:
  const InboundContext& ctx_;
};

}  // namespace sluice::inbound
