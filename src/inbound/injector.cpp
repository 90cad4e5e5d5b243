#include "inbound/injector.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include "core/json.h"
#include "dkim/signer.h"
#include "inbound/headers.h"
#include "inbound/inject.h"
#include "inbound/reception.h"
#include "observe/event_log.h"
#include "spool/spool.h"

namespace sluice::inbound {
namespace {

std::string errors_json(const std::vector<std::string>& errors) {
  std::string out = "[";
  for (const auto& e : errors) {
    if (out.size() > 1) out.push_back(',');
    append_json_string(out, e);
  }
  return out + "]";
}

std::string response(size_t ok, const std::vector<std::string>& failed,
                     const std::vector<std::string>& errors) {
  std::string out = JsonLine()
                        .unum("success_count", ok)
                        .unum("fail_count", failed.size())
                        .raw("failed_recipients", errors_json(failed))
                        .raw("errors", errors_json(errors))
                        .finish();
  out.pop_back();  // the '\n'
  return out;
}

bool eight_bit(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

// The messages one request makes, and what comes back from the spool.
struct Batch {
  std::function<void(int, std::string)> done;
  std::mutex mu;
  size_t pending = 0, ok = 0;
  std::vector<std::string> failed, errors;
};

}  // namespace

void Injector::inject(std::string body, std::string client_ip,
                      std::function<void(int status, std::string body)> done) {
  auto req = parse_inject_request(body, ctx_.smtp.max_recipients);
  if (!req) {
    const bool malformed = req.error().message.starts_with(kNotJson);
    return done(malformed ? 400 : 422, response(0, {}, {req.error().message}));
  }
  const auto now = std::chrono::system_clock::now();
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t when = std::chrono::system_clock::to_time_t(now);

  // Every message is built before any is stored: bad content injects nothing.
  struct Prepared {
    spool::MessageMeta meta;
    spool::Body body;
    std::string message_id;
  };
  std::vector<Prepared> messages;
  messages.reserve(req->recipients.size());
  for (const auto& rcpt : req->recipients) {
    Prepared p;
    p.meta.id = ctx_.spool->next_id();
    auto text = build_message(*req, rcpt, p.meta.id);
    if (!text) return done(422, response(0, {}, {rcpt.email + ": " + text.error().message}));
    if (text->size() > ctx_.smtp.max_message_size) {
      return done(422, response(0, {}, {rcpt.email + ": the message is " +
                                        std::to_string(text->size()) + " octets, over " +
                                        std::to_string(ctx_.smtp.max_message_size)}));
    }
    spool::MessageMeta& m = p.meta;
    m.received_ms = now_ms;
    m.next_due_ms = now_ms;
    m.sender = req->envelope_sender;
    m.recipients.push_back(spool::Recipient{rcpt.email, 0, "", ""});
    m.body_type = eight_bit(*text) ? spool::BodyType::k8BitMime : spool::BodyType::k7Bit;
    m.smtputf8 = eight_bit(rcpt.email) || eight_bit(req->envelope_sender);
    m.client_ip = client_ip;
    m.helo = "";
    m.tenant = bounded_tag(req->tenant);
    m.campaign = bounded_tag(req->campaign);
    ReceivedInfo info;
    info.helo = "api";
    info.client_ip = client_ip;
    info.by = ctx_.hostname;
    info.protocol = "HTTP";
    info.id = spool::format_id(m.id);
    info.for_rcpt = rcpt.email;
    info.when = when;
    p.body.prefix = received_header(info);
    if (auto v = header_value(*text, "Message-ID")) {
      p.message_id = std::string(*v);
    } else {
      p.message_id = "<" + info.id + "@" + ctx_.hostname + ">";
      p.body.prefix += "Message-ID: " + p.message_id + "\r\n";
    }
    if (!header_value(*text, "Date")) p.body.prefix += "Date: " + rfc5322_date(when) + "\r\n";
    p.body.data = std::move(*text);
    if (ctx_.dkim) p.body.prefix.insert(0, ctx_.dkim->sign(p.body.prefix, p.body.data, when));
    m.size = p.body.size();
    messages.push_back(std::move(p));
  }

  auto batch = std::make_shared<Batch>();
  batch->done = std::move(done);
  batch->pending = messages.size();
  for (auto& p : messages) {
    const spool::MessageMeta meta = p.meta;
    const std::string message_id = p.message_id;
    ctx_.spool->store(std::move(p.meta), std::move(p.body),
                      [this, batch, meta, message_id](const Status& st) {
                        bool last = false;
                        {
                          std::lock_guard lock(batch->mu);
                          if (st) {
                            ++batch->ok;
                          } else {
                            batch->failed.push_back(meta.recipients[0].address);
                            if (batch->errors.empty()) batch->errors.push_back(st.error().message);
                          }
                          last = --batch->pending == 0;
                        }
                        if (st) accepted(ctx_, meta, message_id, "HTTP", false);
                        if (!last) return;
                        // Only after every message's synced write (or its failure).
                        const bool none = batch->ok == 0;
                        if (!batch->failed.empty()) {
                          ctx_.log->write(JsonLine()
                                              .timestamp()
                                              .str("event", "SpoolError")
                                              .str("client_ip", meta.client_ip)
                                              .str("error", batch->errors.front())
                                              .finish());
                        }
                        batch->done(none ? 503 : 200,
                                    response(batch->ok, batch->failed, batch->errors));
                      });
  }
}

}  // namespace sluice::inbound
