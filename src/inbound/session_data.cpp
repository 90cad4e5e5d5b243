// Message content: DATA (dot-stuffed, RFC 5321 section 4.1.1.4) and BDAT chunks (RFC 3030),
// then the hand-over to the spool. The 250 is sent only after the spool's synced write.
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>

#include "core/json.h"
#include "dkim/signer.h"
#include "inbound/headers.h"
#include "inbound/reception.h"
#include "inbound/session.h"
#include "observe/event_log.h"
#include "queue/intake.h"
#include "smtp/data_codec.h"

namespace sluice::inbound {
namespace asio = boost::asio;

namespace {

// Stores through the spool's writer thread and resumes the coroutine on its own executor.
template <class Token>
auto async_store(spool::Spool& spool, spool::MessageMeta meta, spool::Body body, Token&& token) {
  return asio::async_initiate<Token, void(Status)>(
      [&spool](auto handler, spool::MessageMeta m, spool::Body b) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        spool.store(std::move(m), std::move(b),
                    [h, ex](const Status& st) { asio::post(ex, [h, st]() mutable { (*h)(st); }); });
      },
      token, std::move(meta), std::move(body));
}

uint8_t notify_bits(const smtp::Notify& n) {
  uint8_t bits = 0;
  if (n.never) bits |= spool::kNotifyNever;
  if (n.success) bits |= spool::kNotifySuccess;
  if (n.failure) bits |= spool::kNotifyFailure;
  if (n.delay) bits |= spool::kNotifyDelay;
  return bits;
}

// How long a client may take to send message content: data_timeout for the whole of it, plus a
// second for every 64 KB it sends. A client that trickles a byte at a time cannot hold a session
// beyond data_timeout; an honest one sending a big message at 64 KB/s or faster never runs out.
class ContentDeadline {
 public:
  explicit ContentDeadline(std::chrono::milliseconds base)
      : end_(std::chrono::steady_clock::now() + base) {}
  void received(size_t bytes) {
    credit_ += bytes;
    end_ += std::chrono::seconds(credit_ / kBytesPerSecond);
    credit_ %= kBytesPerSecond;
  }
  // Time left, at least 1 ms (fill() then times out with 421).
  std::chrono::milliseconds left() const {
    const auto l = std::chrono::duration_cast<std::chrono::milliseconds>(
        end_ - std::chrono::steady_clock::now());
    return std::max(l, std::chrono::milliseconds(1));
  }

 private:
  static constexpr size_t kBytesPerSecond = 64 * 1024;
  std::chrono::steady_clock::time_point end_;
  size_t credit_ = 0;
};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

asio::awaitable<Session::Next> Session::on_data() {
  if (!mail_) {
    refuse(503, "5.5.1", "Error: need MAIL command");
    co_return Next::kContinue;
  }
  if (rcpts_.empty()) {
    refuse(554, "5.5.1", "Error: no valid recipients");
    co_return Next::kContinue;
  }
  if (bdat_active_) {
    refuse(503, "5.5.1", "Error: DATA during a BDAT transfer");
    co_return Next::kContinue;
  }
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
  smtp::DataDecoder decoder(ctx_.smtp.max_message_size);
  std::string body;
  ContentDeadline deadline(ctx_.smtp.data_timeout);
  for (;;) {
    const auto step = decoder.decode(unread(), &body);
    consume(step.consumed);
    deadline.received(step.consumed);
    if (step.done) break;
    if (!co_await fill(deadline.left())) co_return Next::kClose;
  }
  if (decoder.error() != smtp::DataError::kNone) {
    reply(decoder.error_reply());
    if (decoder.error() != smtp::DataError::kTooBig) ++errors_;
    reset_transaction();
    co_return Next::kContinue;
  }
  co_await finish_message(std::move(body));
  co_return Next::kContinue;
}

asio::awaitable<Session::Next> Session::on_bdat(const smtp::Bdat& bdat) {
  // The chunk is read even when it is refused: its octets are not commands (RFC 3030 section 2).
  const char* refusal = !mail_           ? "need MAIL command"
                        : rcpts_.empty() ? "no valid recipients"
                                         : nullptr;
  const bool keep = refusal == nullptr;
  if (keep) {
    bdat_active_ = true;
    bdat_size_ += bdat.size;
    if (bdat_size_ > ctx_.smtp.max_message_size) bdat_too_big_ = true;
  }
  uint64_t remaining = bdat.size;
  ContentDeadline deadline(ctx_.smtp.data_timeout);
  while (remaining > 0) {
    if (unread().empty() && !co_await fill(deadline.left())) co_return Next::kClose;
    const std::string_view avail = unread();
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining, avail.size()));
    deadline.received(take);
    if (keep && !bdat_too_big_) bdat_body_.append(avail.substr(0, take));
    consume(take);
    remaining -= take;
  }
  if (!keep) {
    refuse(mail_ ? 554 : 503, "5.5.1", std::string("Error: ") + refusal);
    co_return Next::kContinue;
  }
  if (!bdat.last) {
    reply(250, "2.0.0", std::to_string(bdat.size) + " octets received");
    co_return Next::kContinue;
  }
  if (bdat_too_big_) {
    reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    reset_transaction();
    co_return Next::kContinue;
  }
  std::string body = std::move(bdat_body_);
  co_await finish_message(std::move(body));
  co_return Next::kContinue;
}

asio::awaitable<void> Session::finish_message(std::string body) {
  // A message that has made more hops than any honest path needs is in a loop (RFC 5321
  // section 6.3; Postfix's hopcount_limit): refused, so that the loop ends here.
  if (const size_t hops = count_fields(body, "Received"); hops > ctx_.smtp.max_received_headers) {
    reply(554, "5.4.6",
          "Too many hops: " + std::to_string(hops) + " Received headers (more than " +
              std::to_string(ctx_.smtp.max_received_headers) + "), a mail loop");
    reset_transaction();
    co_return;
  }
  spool::MessageMeta meta;
  meta.id = ctx_.spool->next_id();
  meta.received_ms = now_ms();
  meta.next_due_ms = meta.received_ms;  // first attempt right away
  meta.sender = mail_->sender ? mail_->sender->str() : std::string();
  meta.recipients.reserve(rcpts_.size());
  for (const auto& r : rcpts_) {
    spool::Recipient rc;
    rc.address = r.recipient.str();
    rc.notify = notify_bits(r.params.notify);
    if (r.params.orcpt) {
      rc.orcpt_type = r.params.orcpt->addr_type;
      rc.orcpt = r.params.orcpt->address;
    }
    meta.recipients.push_back(std::move(rc));
  }
  const auto& p = mail_->params;
  meta.body_type = static_cast<spool::BodyType>(p.body);
  meta.smtputf8 = p.smtputf8;
  meta.ret = static_cast<spool::DsnRet>(p.ret);
  meta.envid = p.envid.value_or("");
  meta.client_ip = client_ip_;
  meta.helo = helo_;
  meta.auth_user = auth_user_;
  // Tags for egress and reports, from headers meant for sluice alone (removed here). A login
  // that belongs to a tenant sends as that tenant whatever its header says.
  const config::EgressConfig& eg = ctx_.egress;
  std::optional<std::string> tenant, campaign;
  if (!eg.tenant_header.empty()) tenant = take_field(body, eg.tenant_header);
  if (!eg.campaign_header.empty()) campaign = take_field(body, eg.campaign_header);
  meta.tenant = eg.tenant_of_user(auth_user_);
  if (meta.tenant.empty() && tenant) meta.tenant = bounded_tag(*tenant);
  if (campaign) meta.campaign = bounded_tag(*campaign);

  const std::string id = spool::format_id(meta.id);
  ReceivedInfo info;
  info.helo = helo_;
  info.client_ip = client_ip_;
  info.by = ctx_.hostname;
  info.protocol = with_protocol(esmtp_, stream_.tls(), !auth_user_.empty(), p.smtputf8);
  info.tls = stream_.tls_description();
  info.id = id;
  if (rcpts_.size() == 1) info.for_rcpt = meta.recipients[0].address;
  info.when = static_cast<std::time_t>(meta.received_ms / 1000);

  spool::Body stored;
  stored.prefix = received_header(info);
  std::string message_id;
  if (auto v = header_value(body, "Message-ID")) {
    message_id = std::string(*v);
  } else {
    message_id = "<" + id + "@" + ctx_.hostname + ">";
    stored.prefix += "Message-ID: " + message_id + "\r\n";
  }
  if (!header_value(body, "Date")) stored.prefix += "Date: " + rfc5322_date(info.when) + "\r\n";
  stored.data = std::move(body);
  // Signed once, here: every retry sends these bytes.
  if (ctx_.dkim) stored.prefix.insert(0, ctx_.dkim->sign(stored.prefix, stored.data, info.when));
  meta.size = stored.size();

  const Status st = co_await async_store(*ctx_.spool, meta, std::move(stored), asio::use_awaitable);
  if (!st) {
    ctx_.log->write(JsonLine()
                        .timestamp()
                        .str("event", "SpoolError")
                        .str("client_ip", client_ip_)
                        .str("error", st.error().message)
                        .finish());
    reply(452, "4.3.1", "Insufficient system storage, try again later");
    reset_transaction();
    co_return;
  }
  accepted(ctx_, meta, message_id,
           with_protocol(esmtp_, stream_.tls(), !auth_user_.empty(), meta.smtputf8), stream_.tls());
  reply(250, "2.0.0", "Ok: queued as " + id);
  reset_transaction();
}


}  // namespace sluice::inbound
