#include "dns/lookup.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <sys/select.h>

#include <algorithm>
#include <cstring>

namespace sluice::dns {

struct Lookup::Impl {
  ares_channel channel = nullptr;
  ~Impl() {
    if (channel) ares_destroy(channel);
  }

  // One question; `parse` turns a NOERROR answer into values.
  template <class Parse>
  Answer ask(const std::string& name, int type, Parse parse) {
    struct Done {
      bool finished = false;
      int status = 0;
      std::vector<unsigned char> answer;
    } done;
    ares_query(
        channel, name.c_str(), ns_c_in, type,
        [](void* arg, int status, int, unsigned char* abuf, int alen) {
          auto* d = static_cast<Done*>(arg);
          d->finished = true;
          d->status = status;
          if (abuf && alen > 0) d->answer.assign(abuf, abuf + alen);
        },
        &done);
    while (!done.finished) {
      fd_set readers, writers;
      FD_ZERO(&readers);
      FD_ZERO(&writers);
      const int nfds = ares_fds(channel, &readers, &writers);
      if (nfds == 0) break;
      timeval tv{};
      timeval* t = ares_timeout(channel, nullptr, &tv);
      select(nfds, &readers, &writers, nullptr, t);
      ares_process(channel, &readers, &writers);
    }
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

Answer Lookup::a(const std::string& name) {
  return impl_->ask(name, ns_t_a, [](const unsigned char* buf, int len, std::vector<std::string>& out) {
    ares_addrttl addrs[64];
    int n = 64;
    if (ares_parse_a_reply(buf, len, nullptr, addrs, &n) != ARES_SUCCESS) return std::string("nodata");
    char text[INET_ADDRSTRLEN];
    for (int i = 0; i < n; ++i)
      out.emplace_back(inet_ntop(AF_INET, &addrs[i].ipaddr, text, sizeof text));
    return std::string();
  });
}

Answer Lookup::aaaa(const std::string& name) {
  return impl_->ask(name, ns_t_aaaa, [](const unsigned char* buf, int len, std::vector<std::string>& out) {
    ares_addr6ttl addrs[64];
    int n = 64;
    if (ares_parse_aaaa_reply(buf, len, nullptr, addrs, &n) != ARES_SUCCESS) return std::string("nodata");
    char text[INET6_ADDRSTRLEN];
    for (int i = 0; i < n; ++i)
      out.emplace_back(inet_ntop(AF_INET6, &addrs[i].ip6addr, text, sizeof text));
    return std::string();
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

}  // namespace sluice::dns
