#include "dns/lookup.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace sluice::dns {

struct Lookup::Impl {
  ares_channel channel = nullptr;
  ~Impl() {
    if (channel) ares_destroy(channel);
  }

  struct Done {
    bool finished = false;
    int status = ARES_ETIMEOUT;  // if the loop ends without an answer
    std::vector<unsigned char> answer;
  };
  static void on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
    auto* d = static_cast<Done*>(arg);
    d->finished = true;
    d->status = status;
    if (abuf && alen > 0) d->answer.assign(abuf, abuf + alen);
  }
  // Runs c-ares until `done` finishes. poll(), not select(): the server may hold far more than
  // FD_SETSIZE descriptors, and c-ares's sockets are then numbered above it.
  void wait(Done& done) {
    while (!done.finished) {
      ares_socket_t socks[ARES_GETSOCK_MAXNUM];
      const int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
      pollfd fds[ARES_GETSOCK_MAXNUM];
      nfds_t n = 0;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
        if (events) fds[n++] = pollfd{socks[i], events, 0};
      }
      if (n == 0) break;
      timeval tv{};
      const timeval* t = ares_timeout(channel, nullptr, &tv);
      const int ms = t ? static_cast<int>(t->tv_sec * 1000 + t->tv_usec / 1000) : 1000;
      poll(fds, n, ms);
      bool any = false;
      for (nfds_t i = 0; i < n; ++i) {
        if (!fds[i].revents) continue;
        any = true;
        const bool r = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
        const bool w = fds[i].revents & POLLOUT;
        ares_process_fd(channel, r ? fds[i].fd : ARES_SOCKET_BAD, w ? fds[i].fd : ARES_SOCKET_BAD);
      }
      if (!any) ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    }
  }

  // One question with the AD bit set (RFC 6840 section 5.7: asks a validating resolver to say
  // whether it validated the answer); the raw response, or the c-ares status that stopped it.
  Done ask_raw(const std::string& name, int type) {
    Done done;
    unsigned char* query = nullptr;
    int qlen = 0;
    const int st = ares_create_query(name.c_str(), ns_c_in, type, 0, 1, &query, &qlen, 1232);
    if (st != ARES_SUCCESS) {
      done.status = st;
      return done;
    }
    query[3] |= 0x20;  // AD
    ares_send(channel, query, qlen, &Impl::on_answer, &done);
    ares_free_string(query);
    wait(done);
    return done;
  }

  // ask_raw, read: the status, the AD bit, and the RDATA of the answers of `type`.
  Answer ask_validated(const std::string& name, int type, std::vector<std::string>& rdata);

  // One question; `parse` turns a NOERROR answer into values.
  template <class Parse>
  Answer ask(const std::string& name, int type, Parse parse) {
    Done done;
    ares_query(channel, name.c_str(), ns_c_in, type, &Impl::on_answer, &done);
    wait(done);
    Answer a;
    if (done.status == ARES_ENODATA) {
      a.status = Answer::Status::kNoData;
    } else if (done.status == ARES_ENOTFOUND) {
      a.status = Answer::Status::kNxDomain;
    } else if (done.status != ARES_SUCCESS) {
      a.error = ares_strerror(done.status);
    } else if (std::string err = parse(done.answer.data(), static_cast<int>(done.answer.size()), a.values);
               !err.empty()) {
      a.status = err == "nodata" ? Answer::Status::kNoData : Answer::Status::kFailed;
      a.error = err;
    } else {
      a.status = a.values.empty() ? Answer::Status::kNoData : Answer::Status::kOk;
    }
    return a;
  }
};

Lookup::Lookup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Lookup::~Lookup() = default;

Result<std::unique_ptr<Lookup>> Lookup::create(const std::vector<std::string>& nameservers,
                                               config::Duration timeout) {
  static const int init = ares_library_init(ARES_LIB_INIT_ALL);
  if (init != ARES_SUCCESS) return error(std::string("c-ares: ") + ares_strerror(init));
  auto impl = std::make_unique<Impl>();
  ares_options opts{};
  opts.timeout = static_cast<int>(timeout.count());
  opts.tries = 2;
  int status = ares_init_options(&impl->channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (status != ARES_SUCCESS) return error(std::string("c-ares: ") + ares_strerror(status));
  if (!nameservers.empty()) {
    std::string csv;
    for (const auto& ns : nameservers) csv += (csv.empty() ? "" : ",") + ns;
    status = ares_set_servers_ports_csv(impl->channel, csv.c_str());
    if (status != ARES_SUCCESS)
      return error("nameservers " + csv + ": " + ares_strerror(status));
  }
  return std::unique_ptr<Lookup>(new Lookup(std::move(impl)));
}

Answer Lookup::txt(const std::string& name) {
  return impl_->ask(name, ns_t_txt, [](const unsigned char* buf, int len, std::vector<std::string>& out) {
    ares_txt_ext* txt = nullptr;
    if (ares_parse_txt_reply_ext(buf, len, &txt) != ARES_SUCCESS) return std::string("nodata");
    for (ares_txt_ext* t = txt; t; t = t->next) {
      // record_start: a new record; otherwise another string of the same record.
      std::string s(reinterpret_cast<const char*>(t->txt), t->length);
      if (t->record_start || out.empty()) out.push_back(std::move(s));
      else out.back() += s;
    }
    ares_free_data(txt);
    return std::string();
  });
}

namespace {
const void* address_of(const ares_addrttl& a) { return &a.ipaddr; }
const void* address_of(const ares_addr6ttl& a) { return &a.ip6addr; }

// A or AAAA answers as address text (parse: ares_parse_a_reply or ares_parse_aaaa_reply).
template <class Ttl, class Parse>
std::string addresses(Parse parse, int family, const unsigned char* buf, int len,
                      std::vector<std::string>& out) {
  Ttl addrs[64];
  int n = 64;
  if (parse(buf, len, nullptr, addrs, &n) != ARES_SUCCESS) return "nodata";
  char text[INET6_ADDRSTRLEN];
  for (int i = 0; i < n; ++i)
    out.emplace_back(inet_ntop(family, address_of(addrs[i]), text, sizeof text));
  return {};
}
}  // namespace

Answer Lookup::a(const std::string& name) {
  return impl_->ask(name, ns_t_a, [](const unsigned char* buf, int len, std::vector<std::string>& out) {
    return addresses<ares_addrttl>(ares_parse_a_reply, AF_INET, buf, len, out);
  });
}

Answer Lookup::aaaa(const std::string& name) {
  return impl_->ask(name, ns_t_aaaa, [](const unsigned char* buf, int len, std::vector<std::string>& out) {
    return addresses<ares_addr6ttl>(ares_parse_aaaa_reply, AF_INET6, buf, len, out);
  });
}

Answer Lookup::mx(const std::string& name) {
  return impl_->ask(name, ns_t_mx, [](const unsigned char* buf, int len, std::vector<std::string>& out) {
    ares_mx_reply* mx = nullptr;
    if (ares_parse_mx_reply(buf, len, &mx) != ARES_SUCCESS) return std::string("nodata");
    std::vector<std::pair<int, std::string>> list;
    for (ares_mx_reply* m = mx; m; m = m->next) list.emplace_back(m->priority, m->host);
    ares_free_data(mx);
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto& [pref, host] : list) out.push_back(std::move(host));
    return std::string();
  });
}

Answer Lookup::ptr(const std::string& address) {
  // The reverse name: d.c.b.a.in-addr.arpa, or nibbles under ip6.arpa.
  std::string name;
  unsigned char bytes[16];
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
    for (int i = 3; i >= 0; --i) name += std::to_string(bytes[i]) + ".";
    name += "in-addr.arpa";
  } else if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
    static const char* hex = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
      name += hex[bytes[i] & 0xf];
      name += '.';
      name += hex[bytes[i] >> 4];
      name += '.';
    }
    name += "ip6.arpa";
  } else {
    Answer a;
    a.error = "not an IP address: " + address;
    return a;
  }
  return impl_->ask(name, ns_t_ptr, [](const unsigned char* buf, int len, std::vector<std::string>& out) {
    hostent* host = nullptr;
    if (ares_parse_ptr_reply(buf, len, nullptr, 0, AF_INET, &host) != ARES_SUCCESS)
      return std::string("nodata");
    if (host->h_name) out.emplace_back(host->h_name);
    for (char** alias = host->h_aliases; alias && *alias; ++alias) out.emplace_back(*alias);
    ares_free_hostent(host);
    return std::string();
  });
}

namespace {

// A name in a DNS message at `at` (labels or a compression pointer): the offset after it.
std::optional<size_t> skip_name(const std::vector<unsigned char>& m, size_t at) {
  for (int guard = 0; guard < 128 && at < m.size(); ++guard) {
    const unsigned char len = m[at];
    if (len == 0) return at + 1;
    if ((len & 0xC0) == 0xC0) return at + 2 <= m.size() ? std::optional(at + 2) : std::nullopt;
    at += 1 + len;
  }
  return std::nullopt;
}

uint16_t u16(const std::vector<unsigned char>& m, size_t at) {
  return static_cast<uint16_t>(m[at] << 8 | m[at + 1]);
}

// The response's rcode, AD bit, and answer records of `type` (their RDATA) into `a`.
void read_response(const std::vector<unsigned char>& m, int type, Answer& a,
                   std::vector<std::string>& rdata) {
  if (m.size() < 12) {
    a.error = "short DNS response";
    return;
  }
  const int rcode = m[3] & 0x0F;
  a.authenticated = (m[3] & 0x20) != 0;
  if (rcode == 3) {
    a.status = Answer::Status::kNxDomain;
    return;
  }
  if (rcode != 0) {
    a.error = "DNS rcode " + std::to_string(rcode);
    return;
  }
  size_t at = 12;
  const uint16_t qd = u16(m, 4), an = u16(m, 6);
  for (uint16_t i = 0; i < qd; ++i) {
    auto next = skip_name(m, at);
    if (!next || *next + 4 > m.size()) return void(a.error = "malformed DNS response");
    at = *next + 4;
  }
  for (uint16_t i = 0; i < an; ++i) {
    auto next = skip_name(m, at);
    if (!next || *next + 10 > m.size()) return void(a.error = "malformed DNS response");
    at = *next;
    const uint16_t rtype = u16(m, at), rdlen = u16(m, at + 8);
    at += 10;
    if (at + rdlen > m.size()) return void(a.error = "malformed DNS response");
    if (rtype == type) rdata.emplace_back(m.begin() + at, m.begin() + at + rdlen);
    at += rdlen;
  }
  a.status = rdata.empty() ? Answer::Status::kNoData : Answer::Status::kOk;
}

}  // namespace

Answer Lookup::Impl::ask_validated(const std::string& name, int type,
                                   std::vector<std::string>& rdata) {
  Answer a;
  const Done done = ask_raw(name, type);
  if (done.status != ARES_SUCCESS) {
    a.error = ares_strerror(done.status);
    return a;
  }
  read_response(done.answer, type, a, rdata);
  return a;
}

Answer Lookup::tlsa(const std::string& name) {
  std::vector<std::string> rdata;
  Answer a = impl_->ask_validated(name, 52, rdata);  // TLSA (RFC 6698)
  for (const std::string& r : rdata) {
    if (r.size() < 4) continue;
    a.tlsa.push_back(Tlsa{static_cast<uint8_t>(r[0]), static_cast<uint8_t>(r[1]),
                          static_cast<uint8_t>(r[2]), r.substr(3)});
  }
  if (a.ok() && a.tlsa.empty()) a.status = Answer::Status::kNoData;
  return a;
}

Answer Lookup::mx_dnssec(const std::string& name) {
  std::vector<std::string> rdata;
  return impl_->ask_validated(name, ns_t_mx, rdata);
}

}  // namespace sluice::dns
