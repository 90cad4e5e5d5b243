// Which envelope senders an authenticated user may use ([smtp.senders]; Postfix's
// smtpd_sender_login_maps with reject_sender_login_mismatch): a submission account must not send
// as anyone it likes.
//
// The table maps a login (or "*" for every login not listed) to patterns: "user@example.org"
// (that address), "@example.org" (any address in that domain) or "*" (any). Comparison ignores
// case in the domain and the local part. With no table, any sender is allowed (as before);
// with one, a login it does not cover may send as nobody. The null sender <> is always allowed
// (bounces and notifications from the user's own system).
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::inbound {

using SenderLogins = std::map<std::string, std::vector<std::string>>;

bool may_send_as(const SenderLogins& table, std::string_view login, std::string_view sender);

}  // namespace sluice::inbound
