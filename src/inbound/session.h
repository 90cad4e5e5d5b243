// One inbound SMTP connection, from banner to QUIT, as a straight-line coroutine.
//
// The session drives the sans-I/O protocol core (src/smtp): LineFramer cuts commands,
// parse_command types them, DataDecoder reads DATA. It answers pipelined commands in batches
// (RFC 2920: replies are flushed before the session waits for more input), keeps the
// transaction state, applies relay policy and limits, and answers 250 to a message only after
// the spool has it durably.
//
// Threads: everything runs on the session's strand (the socket's executor). The Listener keeps a
// weak reference to ask for shutdown; request_shutdown() may be called from any thread.
// Trusts nothing the client sends.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inbound/context.h"
#include "net/stream.h"
#include "smtp/command.h"
#include "smtp/line_framer.h"
#include "spool/spool.h"

namespace sluice::inbound {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket socket, const InboundContext& ctx, std::string client_ip);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  boost::asio::awaitable<void> run();

  // Asks the session to finish: a session waiting for a command says 421 and closes; one in
  // the middle of a message finishes it first. Thread-safe.
  void request_shutdown();

  boost::asio::any_io_executor executor() const { return executor_; }

 private:
  enum class Next { kContinue, kClose };

  // Input and output.
  boost::asio::awaitable<bool> fill(std::chrono::milliseconds timeout);
  boost::asio::awaitable<bool> flush();
  void reply(uint16_t code, std::string_view enhanced, std::string_view text);
  void reply(const smtp::Reply& r);
  // An error reply caused by the client: counts towards max_errors.
  void refuse(uint16_t code, std::string_view enhanced, std::string_view text);
  std::string_view unread() const { return std::string_view(in_.data() + pos_, len_ - pos_); }
  void consume(size_t n);

  // Commands (session.cpp).
  boost::asio::awaitable<Next> dispatch(smtp::Command& cmd);
  void on_hello(const std::string& domain, bool esmtp);
  void on_mail(smtp::MailFrom& mail);
  void on_rcpt(smtp::RcptTo& rcpt);
  boost::asio::awaitable<Next> on_starttls();
  bool client_error();  // counts an error reply; true when the limit is reached
  void reset_transaction();

  // AUTH (session_auth.cpp).
  boost::asio::awaitable<Next> on_auth(const smtp::Auth& auth);
  boost::asio::awaitable<std::optional<std::string>> read_auth_line();

  // Message content (session_data.cpp).
  boost::asio::awaitable<Next> on_data();
  boost::asio::awaitable<Next> on_bdat(const smtp::Bdat& bdat);
  boost::asio::awaitable<void> finish_message(std::string body);

  const InboundContext& ctx_;
  const std::string client_ip_;
  boost::asio::any_io_executor executor_;  // the session's strand; before stream_ (init order)
  net::Stream stream_;
  smtp::LineFramer framer_;

  std::string in_;  // read buffer (only grows; never zero-filled again): [pos_, len_) is unread
  size_t pos_ = 0;
  size_t len_ = 0;
  std::string out_;  // replies not yet written

  // Session state.
  bool greeted_ = false;
  bool esmtp_ = false;
  std::string helo_;
  std::string auth_user_;
  uint32_t errors_ = 0;
  std::chrono::steady_clock::time_point command_deadline_{};  // for the command being read
  bool shutdown_requested_ = false;  // touched on the strand only
  bool waiting_for_command_ = false;

  // Transaction state (RFC 5321 section 3.3): MAIL, RCPTs, then DATA or BDAT chunks.
  std::optional<smtp::MailFrom> mail_;
  std::vector<smtp::RcptTo> rcpts_;
  bool bdat_active_ = false;
  std::string bdat_body_;
  uint64_t bdat_size_ = 0;
  bool bdat_too_big_ = false;
};

}  // namespace sluice::inbound
