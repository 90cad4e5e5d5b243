#include "inbound/reception.h"

#include "core/json.h"
#include "observe/event_log.h"
#include "observe/metrics.h"
#include "queue/intake.h"

namespace sluice::inbound {

std::string bounded_tag(std::string_view v) {
  std::string out;
  for (char c : v.substr(0, 64)) out.push_back(c > 0x20 && c < 0x7f ? c : '_');
  return out;
}

void accepted(const InboundContext& ctx, const spool::MessageMeta& meta,
              const std::string& message_id, std::string_view protocol, bool tls) {
  ctx.intake->accept(meta);
  if (ctx.metrics) {
    // Tenants as configured; any other tag counts as none (bounded labels).
    const bool known = ctx.egress.tenants.count(meta.tenant) > 0;
    ctx.metrics->inc(observe::metric::kReceived, {{"tenant", known ? meta.tenant : ""}});
  }
  std::string rcpts = "[";
  for (const auto& r : meta.recipients) {
    if (rcpts.size() > 1) rcpts.push_back(',');
    append_json_string(rcpts, r.address);
  }
  rcpts.push_back(']');
  JsonLine line;
  line.timestamp()
      .str("event", "Reception")
      .str("id", spool::format_id(meta.id))
      .str("message_id", message_id)
      .str("sender", meta.sender)
      .raw("recipients", rcpts)
      .unum("size", meta.size)
      .str("client_ip", meta.client_ip)
      .str("helo", meta.helo)
      .str("protocol", protocol)
      .boolean("tls", tls);
  if (!meta.auth_user.empty()) line.str("auth_user", meta.auth_user);
  if (!meta.tenant.empty()) line.str("tenant", meta.tenant);
  if (!meta.campaign.empty()) line.str("campaign", meta.campaign);
  if (!meta.envid.empty()) line.str("envid", meta.envid);
  ctx.log->write(line.finish());
}

}  // namespace sluice::inbound
