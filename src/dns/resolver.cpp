#include "dns/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "core/text.h"

namespace sluice::dns {
namespace {

using Clock = std::chrono::steady_clock;

// The smallest TTL among the answer records of a raw DNS response (RFC 1035 section 4.1).
uint32_t min_answer_ttl(const unsigned char* buf, int len) {
  auto skip_name = [&](int pos) -> int {
    while (pos < len) {
      const unsigned char l = buf[pos];
      if (l == 0) return pos + 1;
      if ((l & 0xC0) == 0xC0) return pos + 2;
      pos += l + 1;
    }
    return -1;
  };
  if (len < 12) return 0;
  const int qd = (buf[4] << 8) | buf[5], an = (buf[6] << 8) | buf[7];
  int pos = 12;
  for (int i = 0; i < qd && pos >= 0; ++i) {
    pos = skip_name(pos);
    if (pos >= 0) pos += 4;
  }
  uint32_t ttl = UINT32_MAX;
  for (int i = 0; i < an && pos >= 0 && pos + 10 <= len; ++i) {
    pos = skip_name(pos);
    if (pos < 0 || pos + 10 > len) break;
    const uint32_t t = (uint32_t(buf[pos + 4]) << 24) | (uint32_t(buf[pos + 5]) << 16) |
                       (uint32_t(buf[pos + 6]) << 8) | buf[pos + 7];
    ttl = std::min(ttl, t);
    pos += 10 + ((buf[pos + 8] << 8) | buf[pos + 9]);
  }
  return ttl == UINT32_MAX ? 0 : ttl;
}

std::string normalise(std::string_view host) {
  std::string h = to_lower(host);
  while (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

ResolveError transient(std::string text) {
  return {false, smtp::Reply::make(451, "4.4.3", text)};
}
ResolveError permanent(uint16_t code, std::string_view enh, std::string text) {
  return {true, smtp::Reply::make(code, enh, text)};
}

const char* status_text(int status) {
  return ares_strerror(status);
}

const void* address_of(const ares_addrttl& r) {
  return &r.ipaddr;
}
const void* address_of(const ares_addr6ttl& r) {
  return &r.ip6addr;
}

// Appends the addresses of an A (ares_addrttl) or AAAA (ares_addr6ttl) answer to `host` and
// lowers `ttl` to theirs.
template <class Rec>
void add_addresses(int (*parse)(const unsigned char*, int, hostent**, Rec*, int*), int family,
                   const unsigned char* abuf, int alen, Host& host, uint32_t& ttl) {
  Rec records[32];
  int n = 32;
  hostent* he = nullptr;
  if (parse(abuf, alen, &he, records, &n) != ARES_SUCCESS) return;
  for (int k = 0; k < n; ++k) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(family, address_of(records[k]), text, sizeof text);
    host.addresses.emplace_back(text);
    ttl = std::min(ttl, uint32_t(std::max(records[k].ttl, 0)));
  }
  if (he) ares_free_hostent(he);
}

}  // namespace

std::string site_of(std::vector<std::string> mx_hosts) {
  for (auto& h : mx_hosts) h = normalise(h);
  std::sort(mx_hosts.begin(), mx_hosts.end());
  mx_hosts.erase(std::unique(mx_hosts.begin(), mx_hosts.end()), mx_hosts.end());
  std::string site;
  for (const auto& h : mx_hosts) site += (site.empty() ? "" : ",") + h;
  return site;
}

// One resolution in progress: the MX step, then addresses for every host. Lives on the
// resolver thread only.
struct Resolution {
  std::string domain;
  std::vector<Resolver::Done> waiting;  // callers asking for the same domain meanwhile
  std::vector<Host> hosts;
  std::vector<std::string> mx_names;
  bool implicit_mx = false;
  int pending = 0;
  uint32_t ttl = UINT32_MAX;
  std::optional<ResolveError> failure;  // a transient error while looking up a host's address
  config::TlsPolicy tls = config::TlsPolicy::kOpportunistic;
  std::string route_site;
  std::string route_provider;  // a route's own provider name
  std::vector<std::string> sts_records;  // _mta-sts TXT records (AresOptions::mta_sts_txt)
  bool sts_lookup_failed = false;
  bool finished = false;  // finish() ran: a query still out completes nothing more
};

struct AresResolver::Impl {
  AresOptions options;
  ares_channel channel = nullptr;
  int wake[2] = {-1, -1};  // self-pipe: wakes the thread when work is queued
  std::thread thread;
  std::mt19937_64 rng{std::random_device{}()};
  std::atomic<uint64_t> queries{0};

  std::mutex mu;  // guards requests and stopping
  std::deque<std::pair<std::string, Done>> requests;
  bool stopping = false;

  // Resolver thread only.
  struct Cached {
    Clock::time_point expires;
    ResolveResult result;
  };
  std::unordered_map<std::string, Cached> cache;
  std::unordered_map<std::string, std::shared_ptr<Resolution>> in_progress;

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    if (wake[1] >= 0) (void)!::write(wake[1], "x", 1);
    if (thread.joinable()) thread.join();
    if (channel) ares_destroy(channel);
    for (int fd : wake) {
      if (fd >= 0) ::close(fd);
    }
  }

  void loop();
  void start(const std::string& domain, Done done);
  void finish(const std::shared_ptr<Resolution>& r, ResolveResult result, uint32_t ttl);
  void query(const std::shared_ptr<Resolution>& r, const std::string& name, int type,
             std::function<void(int status, const unsigned char*, int)> then);
  void lookup_addresses(const std::shared_ptr<Resolution>& r);
  void complete_if_done(const std::shared_ptr<Resolution>& r);
};

namespace {
struct QueryContext {
  AresResolver::Impl* impl;
  std::function<void(int, const unsigned char*, int)> then;
};
}  // namespace

void AresResolver::Impl::query(const std::shared_ptr<Resolution>& r, const std::string& name,
                               int type, std::function<void(int, const unsigned char*, int)> then) {
  ++r->pending;
  ++queries;
  auto* ctx = new QueryContext{this, std::move(then)};
  ares_query(
      channel, name.c_str(), ns_c_in, type,
      [](void* arg, int status, int, unsigned char* abuf, int alen) {
        std::unique_ptr<QueryContext> c(static_cast<QueryContext*>(arg));
        c->then(status, abuf, alen);
      },
      ctx);
}

void AresResolver::Impl::start(const std::string& domain_in, Done done) {
  const std::string domain = normalise(domain_in);
  if (auto it = cache.find(domain); it != cache.end()) {
    if (Clock::now() < it->second.expires) {
      done(it->second.result);
      return;
    }
    cache.erase(it);
  }
  if (auto it = in_progress.find(domain); it != in_progress.end()) {
    it->second->waiting.push_back(std::move(done));
    return;
  }
  auto r = std::make_shared<Resolution>();
  r->domain = domain;
  r->tls = options.tls;  // a route's own policy replaces it below
  r->waiting.push_back(std::move(done));
  in_progress[domain] = r;

  if (auto route = options.routes.find(domain); route != options.routes.end()) {
    // A route: the MX step is the configured host; its addresses still come from DNS unless it
    // is an address already.
    const config::Route& rt = route->second;
    r->tls = rt.tls;
    r->route_site = "route:" + rt.host + ":" + std::to_string(rt.port);
    r->route_provider = rt.provider;
    Host h{rt.host, {}, rt.port, {}};
    unsigned char buf[16];
    if (inet_pton(AF_INET, rt.host.c_str(), buf) == 1 ||
        inet_pton(AF_INET6, rt.host.c_str(), buf) == 1) {
      h.addresses.push_back(rt.host);
      r->hosts.push_back(std::move(h));
      complete_if_done(r);
      return;
    }
    r->hosts.push_back(std::move(h));
    r->mx_names.push_back(rt.host);
    lookup_addresses(r);
    return;
  }

  query(r, domain, ns_t_mx, [this, r](int status, const unsigned char* abuf, int alen) {
    --r->pending;
    if (status == ARES_SUCCESS) {
      struct ares_mx_reply* mx = nullptr;
      const int ps = ares_parse_mx_reply(abuf, alen, &mx);
      if (ps == ARES_SUCCESS) {
        r->ttl = std::min(r->ttl, min_answer_ttl(abuf, alen));
        std::vector<std::pair<int, std::string>> list;
        for (auto* m = mx; m; m = m->next) list.emplace_back(m->priority, normalise(m->host));
        ares_free_data(mx);
        // RFC 7505: a single MX with an empty (".") target says the domain takes no mail.
        if (list.size() == 1 && list[0].second.empty()) {
          return finish(
              r,
              Unexpected<ResolveError>{permanent(
                  556, "5.1.10", r->domain + " does not accept mail (null MX, RFC 7505)")},
              r->ttl);
        }
        std::shuffle(list.begin(), list.end(), rng);  // random among equal preferences…
        std::stable_sort(list.begin(), list.end(),    // …ordered by preference
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& [pref, host] : list) {
          if (host.empty()) continue;
          r->mx_names.push_back(host);
          r->hosts.push_back(Host{host, {}, options.mx_port, {}});
        }
        return lookup_addresses(r);
      }
      status = ps;
    }
    if (status == ARES_ENODATA) {
      // No MX: the domain itself is the mail host (RFC 5321 section 5.1).
      r->implicit_mx = true;
      r->mx_names.push_back(r->domain);
      r->hosts.push_back(Host{r->domain, {}, options.mx_port, {}});
      return lookup_addresses(r);
    }
    if (status == ARES_ENOTFOUND) {
      return finish(r,
                    Unexpected<ResolveError>{permanent(
                        550, "5.1.2", "domain " + r->domain + " does not exist (NXDOMAIN)")},
                    60);
    }
    finish(r,
           Unexpected<ResolveError>{
               transient("MX lookup for " + r->domain + " failed: " + status_text(status))},
           0);
  });
  if (options.mta_sts_txt) {
    // In parallel with the MX step: the policy resolver needs it for every domain, and one
    // round trip here costs nothing more (src/tlspolicy/).
    query(r, "_mta-sts." + domain, ns_t_txt,
          [this, r](int status, const unsigned char* abuf, int alen) {
            --r->pending;
            if (status == ARES_SUCCESS) {
              ares_txt_ext* txt = nullptr;
              if (ares_parse_txt_reply_ext(abuf, alen, &txt) == ARES_SUCCESS) {
                r->ttl = std::min(r->ttl, min_answer_ttl(abuf, alen));
                for (ares_txt_ext* t = txt; t; t = t->next) {
                  std::string part(reinterpret_cast<const char*>(t->txt), t->length);
                  if (t->record_start || r->sts_records.empty())
                    r->sts_records.push_back(std::move(part));
                  else
                    r->sts_records.back() += part;
                }
                ares_free_data(txt);
              }
            } else if (status != ARES_ENODATA && status != ARES_ENOTFOUND) {
              r->sts_lookup_failed = true;
            }
            complete_if_done(r);
          });
  }
}

void AresResolver::Impl::lookup_addresses(const std::shared_ptr<Resolution>& r) {
  for (size_t i = 0; i < r->hosts.size(); ++i) {
    for (int type : {ns_t_a, ns_t_aaaa}) {
      query(r, r->hosts[i].name, type,
            [this, r, i, type](int status, const unsigned char* abuf, int alen) {
              --r->pending;
              if (status == ARES_SUCCESS) {
                if (type == ns_t_a) {
                  add_addresses<ares_addrttl>(ares_parse_a_reply, AF_INET, abuf, alen, r->hosts[i],
                                              r->ttl);
                } else {
                  add_addresses<ares_addr6ttl>(ares_parse_aaaa_reply, AF_INET6, abuf, alen,
                                               r->hosts[i], r->ttl);
                }
              } else if (status != ARES_ENODATA && status != ARES_ENOTFOUND && !r->failure) {
                r->failure = transient("address lookup for " + r->hosts[i].name +
                                       " failed: " + status_text(status));
              }
              complete_if_done(r);
            });
    }
  }
}

void AresResolver::Impl::complete_if_done(const std::shared_ptr<Resolution>& r) {
  if (r->pending > 0 || r->finished) return;
  std::erase_if(r->hosts, [](const Host& h) { return h.addresses.empty(); });
  for (Host& h : r->hosts) {  // IPv4 first: loopback tests and most receivers; then IPv6
    std::stable_partition(h.addresses.begin(), h.addresses.end(),
                          [](const std::string& a) { return a.find(':') == std::string::npos; });
  }
  if (r->hosts.empty()) {
    if (r->failure) return finish(r, Unexpected<ResolveError>{*r->failure}, 0);
    if (r->implicit_mx) {
      return finish(r,
                    Unexpected<ResolveError>{
                        permanent(550, "5.1.2", r->domain + " has no MX and no address records")},
                    60);
    }
    return finish(
        r, Unexpected<ResolveError>{transient("no address for any mail host of " + r->domain)}, 0);
  }
  Destination d;
  d.site = r->route_site.empty() ? site_of(r->mx_names) : r->route_site;
  d.provider = !r->route_provider.empty() ? r->route_provider
               : options.providers            ? options.providers->match(r->mx_names)
                                              : std::string();
  d.hosts = r->hosts;
  d.tls = r->tls;
  d.sts_records = r->sts_records;
  d.sts_lookup_failed = r->sts_lookup_failed;
  finish(r, d, r->ttl == UINT32_MAX ? 0 : r->ttl);
}

void AresResolver::Impl::finish(const std::shared_ptr<Resolution>& r, ResolveResult result,
                                uint32_t ttl) {
  r->finished = true;
  in_progress.erase(r->domain);
  if (ttl > 0)
    cache.insert_or_assign(r->domain, Cached{Clock::now() + std::chrono::seconds(ttl), result});
  for (auto& done : r->waiting) done(result);
  r->waiting.clear();
}

void AresResolver::Impl::loop() {
  for (;;) {
    std::deque<std::pair<std::string, Done>> batch;
    {
      std::lock_guard lock(mu);
      if (stopping) return;
      batch.swap(requests);
    }
    for (auto& [domain, done] : batch) start(domain, std::move(done));

    // poll(), not select(): c-ares's sockets may be numbered above FD_SETSIZE (1024) on a busy
    // server, where select() would write past its fd_set.
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    fds.push_back(pollfd{wake[0], POLLIN, 0});
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events) fds.push_back(pollfd{socks[i], events, 0});
    }
    struct timeval max_wait = {1, 0}, tv{};
    struct timeval* tvp = ares_timeout(channel, &max_wait, &tv);
    const int timeout_ms = static_cast<int>(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n > 0 && (fds[0].revents & POLLIN)) {
      char drain[64];
      (void)!::read(wake[0], drain, sizeof drain);
    }
    bool any = false;
    for (size_t i = 1; i < fds.size(); ++i) {
      const short re = fds[i].revents;
      if (!re) continue;
      any = true;
      const bool readable = re & (POLLIN | POLLERR | POLLHUP);
      const bool writable = re & (POLLOUT | POLLERR | POLLHUP);
      ares_process_fd(channel, readable ? fds[i].fd : ARES_SOCKET_BAD,
                      writable ? fds[i].fd : ARES_SOCKET_BAD);
    }
    if (!any) ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
  }
}

Result<std::unique_ptr<AresResolver>> AresResolver::create(AresOptions options) {
  static const int init = ares_library_init(ARES_LIB_INIT_ALL);
  if (init != ARES_SUCCESS) return error(std::string("c-ares: ") + ares_strerror(init));
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  struct ares_options opts {};
  opts.timeout = static_cast<int>(impl->options.timeout.count());
  opts.tries = 2;
  int status = ares_init_options(&impl->channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (status != ARES_SUCCESS) return error(std::string("c-ares init: ") + ares_strerror(status));
  if (!impl->options.nameservers.empty()) {
    std::string csv;
    for (const auto& ns : impl->options.nameservers) csv += (csv.empty() ? "" : ",") + ns;
    status = ares_set_servers_ports_csv(impl->channel, csv.c_str());
    if (status != ARES_SUCCESS) {
      return error("dns.nameservers \"" + csv + "\": " + ares_strerror(status));
    }
  }
  if (::pipe2(impl->wake, O_CLOEXEC | O_NONBLOCK) != 0) return error("dns: cannot create a pipe");
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->loop(); });
  return std::unique_ptr<AresResolver>(new AresResolver(std::move(impl)));
}

AresResolver::AresResolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AresResolver::~AresResolver() = default;

void AresResolver::resolve(const std::string& domain, Done done) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->requests.emplace_back(domain, std::move(done));
  }
  (void)!::write(impl_->wake[1], "x", 1);
}

uint64_t AresResolver::queries_sent() const {
  return impl_->queries.load();
}

}  // namespace sluice::dns
