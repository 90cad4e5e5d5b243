// sluice's configuration: typed, with defaults and bounds, loaded from TOML.
//
// Every key has a default (an empty file is a working configuration — etc/sluice.toml spells the
// defaults out), a type and, where it matters, a minimum and maximum. Loading reports every
// mistake at once, each naming the file, line, column and key: unknown sections or keys (a typo
// must not silently fall back to a default), wrong types, values out of range, unparseable units.
// doc/config.md lists every key.
//
// Relative paths are taken relative to the working directory sluice starts in.
// Plain values; loading is a pure function of the file's text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/units.h"
#include "core/status.h"

namespace sluice::config {

// "127.0.0.1:2525", "[::1]:2525", "localhost:8025".
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string str() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses "host:port" ("127.0.0.1:25", "[::1]:25", "localhost:25"); an error message or nullopt.
std::optional<std::string> parse_endpoint(std::string_view s, Endpoint& out);

struct ServerConfig {
  std::string hostname = "localhost";  // EHLO name and banner name
  uint32_t threads = 0;                // io_context threads; 0: one per core
  Duration shutdown_grace{30'000};     // graceful phase of shutdown before sessions are cut
  friend bool operator==(const ServerConfig&, const ServerConfig&) = default;
};

struct SmtpConfig {
  Endpoint listen{"127.0.0.1", 2525};
  uint64_t max_message_size = 50'000'000;  // octets; SIZE advertises it; 552 5.3.4 beyond
  uint32_t max_recipients = 1000;          // per message; 452 4.5.3 beyond
  uint32_t max_connections = 1000;         // in total; 421 4.7.0 beyond
  uint32_t max_connections_per_ip = 50;    // per client address; 421 4.7.0 beyond
  uint32_t max_errors = 10;                // error replies in one session before 421 and close
  uint32_t max_received_headers = 50;      // more hops is a mail loop: 554 5.4.6
  Duration command_timeout{300'000};       // RFC 5321 section 4.5.3.2: at least 5 minutes
  Duration data_timeout{600'000};          // waiting for DATA content and the final dot
  // Clients that may submit without authenticating. Everyone else must AUTH (under TLS).
  std::vector<std::string> client_networks{"127.0.0.0/8", "::1/128"};
  std::string tls_cert;  // PEM certificate chain; STARTTLS is offered when cert and key are set
  std::string tls_key;   // PEM private key
  std::string
      auth_credentials;  // credentials file (`sluice passwd`); AUTH offered under TLS when set
  // [smtp.senders]: login (or "*") -> envelope senders it may use ("a@example.org",
  // "@example.org", "*"); empty: any (src/inbound/sender_policy.h).
  std::map<std::string, std::vector<std::string>> senders;
  uint32_t auth_max_failures = 5;        // failed AUTHs from one address before it is locked out
  Duration auth_failure_window{600'000};  // … for the rest of this window from its first failure
  friend bool operator==(const SmtpConfig&, const SmtpConfig&) = default;
};

struct HttpConfig {
  Endpoint listen{"127.0.0.1", 8025};
  // Every request but /healthz must carry "Authorization: Bearer TOKEN"; "" = only loopback
  // clients are served.
  std::string api_token;
  friend bool operator==(const HttpConfig&, const HttpConfig&) = default;
};

struct SpoolConfig {
  std::string path = "var/spool";         // RocksDB directory
  uint64_t min_free_space = 100'000'000;  // below this, new messages get 452 4.3.1
  friend bool operator==(const SpoolConfig&, const SpoolConfig&) = default;
};

struct LogConfig {
  std::string path = "var/log/sluice.jsonl";  // JSON-lines event log
  friend bool operator==(const LogConfig&, const LogConfig&) = default;
};

// Retries (Postfix-like defaults: minimal_backoff_time, maximal_backoff_time,
// maximal_queue_lifetime).
struct QueueConfig {
  Duration min_backoff{300'000};    // first retry after about this long
  Duration max_backoff{3'600'000};  // retries never further apart than this
  Duration max_age{432'000'000};    // 5 days: then the message expires (DSN to the sender)
  bool hold = false;                // accept and spool, deliver nothing (maintenance, tests)
  // Messages being worked on at once (resolving, waiting in a site's ready queue, on a
  // connection); the rest wait in the scheduled queue. One site holds at most a quarter.
  uint32_t max_in_flight = 10'000;
  friend bool operator==(const QueueConfig&, const QueueConfig&) = default;
};

// STARTTLS toward receivers: none; opportunistic (when offered, certificate not checked);
// required (no TLS: deferred); verify (required, and the certificate must chain to a trusted
// CA and name the MX host: a failure is a deferral with category tls, never a downgrade).
enum class TlsPolicy { kNone, kOpportunistic, kRequired, kVerify };

// How sluice delivers (the SMTP client). Per-site limits and learning are [shaping].
struct DeliveryConfig {
  std::string source_ip;                      // bind outbound connections here; "" = any
  std::string helo_name;                      // "" = server.hostname
  TlsPolicy tls = TlsPolicy::kOpportunistic;  // STARTTLS when offered
  std::string tls_ca_file;  // trusted CAs for tls = "verify" (PEM); "" = the system's
  uint16_t port = 25;                         // TCP port of MX hosts (tests use others)
  uint32_t max_recipients_per_transaction = 100;
  // Outbound connections open at once, all sites together (besides each key's own limit); one
  // site holds at most three quarters of them while others wait. Never more than the open-file
  // limit allows (the server lowers it).
  uint32_t max_connections = 2000;
  // Message bodies held by outbound connections at once, all together; one message bigger than
  // this still goes, alone.
  uint64_t max_bytes_in_flight = 512'000'000;
  Duration connect_timeout{30'000};
  Duration command_timeout{300'000};  // RFC 5321 section 4.5.3.2: MAIL, RCPT 5 min
  Duration data_timeout{600'000};     // waiting for the reply to the final dot: 10 min
  friend bool operator==(const DeliveryConfig&, const DeliveryConfig&) = default;
};

// The limits of one shaping key (egress source, site). Configured values are maxima: the
// adaptive controller learns the receiver's real limits below them and never exceeds them.
struct ShapingLimits {
  uint32_t connection_limit = 32;  // connections open at once
  uint32_t max_deliveries_per_connection = 100;
  Rate max_message_rate;         // messages handed to connections; 0/s: unlimited
  Rate max_connection_rate;      // new connections; 0/s: unlimited
  Duration idle_timeout{5'000};  // a connection waiting this long for a message closes
  bool adaptive = true;          // learn below the maxima; false: exactly these limits
  friend bool operator==(const ShapingLimits&, const ShapingLimits&) = default;
};

// [shaping.provider.X] / [shaping.site."…"] / [shaping.domain."…"]: only the keys given.
struct ShapingOverride {
  std::optional<uint32_t> connection_limit;
  std::optional<uint32_t> max_deliveries_per_connection;
  std::optional<Rate> max_message_rate;
  std::optional<Rate> max_connection_rate;
  std::optional<Duration> idle_timeout;
  std::optional<bool> adaptive;
  void apply_to(ShapingLimits& l) const;
  friend bool operator==(const ShapingOverride&, const ShapingOverride&) = default;
};

// How the adaptive controller reacts (doc/shaping.md).
struct ShapingTuning {
  uint32_t initial_connections = 2;  // slow start: a key never seen starts here
  Duration hold{1'000};              // no new connection this long after a connection-limit signal
  Duration max_hold{60'000};         // holds double while no connection works, up to this
  Duration probe_interval{120'000};  // clean operation before probing one more connection
  Duration max_probe_interval{3'600'000};  // a failed probe doubles the interval, up to this
  Duration suspend{600'000};               // a reputation signal suspends the key this long
  Duration max_suspend{14'400'000};        // repeated suspensions double, up to this
  Duration decay{3'600'000};         // learned limits rise by one step per this, toward probing
  Duration greylist_retry{300'000};  // a greylisted message is retried after this
  Duration forget_after{600'000};    // an idle site leaves memory after this (state is kept)
  Duration dead_probe{10'000};       // a site where nothing works: one probe after this
  Duration max_dead_probe{300'000};  // failed probes double the wait, up to this
  friend bool operator==(const ShapingTuning&, const ShapingTuning&) = default;
};

struct ShapingConfig {
  ShapingTuning tuning;
  ShapingLimits defaults;
  std::map<std::string, ShapingOverride> providers;  // provider name (etc/providers.toml)
  std::map<std::string, ShapingOverride> sites;      // site name (sorted MX hosts)
  std::map<std::string, ShapingOverride> domains;    // lower-case recipient domain
  // The limits for a key: defaults, then provider, site and domain overrides in that order.
  ShapingLimits limits_for(std::string_view provider, std::string_view site,
                           std::string_view domain) const;
  friend bool operator==(const ShapingConfig&, const ShapingConfig&) = default;
};

struct DnsConfig {
  std::vector<std::string> nameservers;  // "127.0.0.1:5353"; empty = the system's
  Duration timeout{5'000};               // per query attempt
  std::string providers;                 // provider rules file (etc/providers.toml); "" = none
  friend bool operator==(const DnsConfig&, const DnsConfig&) = default;
};

// [route."example.test"]: deliver a domain to a fixed host, without MX lookup.
struct Route {
  std::string host;  // address or name (resolved with A/AAAA)
  uint16_t port = 25;
  TlsPolicy tls = TlsPolicy::kOpportunistic;
  std::string provider;  // the receiver's provider name (shaping, reports); "" = by its host
  friend bool operator==(const Route&, const Route&) = default;
};

// [tls] (doc/config.md "TLS policy"): how far sluice trusts receivers' TLS beyond
// [delivery] tls. Per provider or recipient domain the policy may be stricter or looser; MTA-STS
// (RFC 8461) and DANE (RFC 7672) raise it per domain from what receivers publish
// (src/tlspolicy/).
struct TlsConfig {
  bool mta_sts = true;   // look up _mta-sts TXT records and fetch the HTTPS policies
  bool dane = false;     // TLSA records, trusted only when the resolver validates (AD bit)
  uint16_t mta_sts_port = 443;       // the policy host's HTTPS port (tests use others)
  Duration mta_sts_timeout{20'000};  // fetching one policy, connect to body
  Duration mta_sts_retry{900'000};  // a policy that could not be fetched is tried again after this
  std::map<std::string, TlsPolicy> providers;  // [tls.provider] gmail = "verify"
  std::map<std::string, TlsPolicy> domains;    // [tls.domain] "bank.example" = "verify"
  friend bool operator==(const TlsConfig&, const TlsConfig&) = default;
};

struct ClassifyConfig {
  std::string rules;  // reply classification rules file; "" = the shipped etc/classify.toml,
                      // compiled in
  friend bool operator==(const ClassifyConfig&, const ClassifyConfig&) = default;
};

// Egress (doc/config.md, "Egress"): where mail leaves from. A source is a local address with
// its EHLO name; a pool is a weighted set of sources; a tenant sends through one pool.
struct EgressSource {
  std::string name;
  std::string address;  // bind outbound connections here; "" = the system's choice
  std::string ehlo;     // "" = [delivery] helo_name, else server.hostname
  std::string warmup;   // a warm-up schedule's name; "" = none (an established address)
  int64_t warmup_start_ms = 0;  // day 1 of its warm-up (Unix ms, UTC day); 0 = its first message
  ShapingOverride limits;       // its own limits, over the provider/site/domain ones
  friend bool operator==(const EgressSource&, const EgressSource&) = default;
};

// [warmup.NAME] (and the built-in etc/warmup.toml): caps per day of a source's warm-up.
struct WarmupCaps {
  std::vector<uint64_t> daily;   // day 1, 2, …; after the last, no cap
  std::vector<uint64_t> hourly;  // the same days; missing days: a tenth of the daily cap
  friend bool operator==(const WarmupCaps&, const WarmupCaps&) = default;
};
struct WarmupSchedule {
  std::string name;
  WarmupCaps caps;                             // every provider …
  std::map<std::string, WarmupCaps> providers;  // … unless it has its own
  friend bool operator==(const WarmupSchedule&, const WarmupSchedule&) = default;
};

struct EgressPool {
  std::string name;
  std::vector<std::pair<std::string, uint32_t>> sources;  // source name, weight (>= 1)
  friend bool operator==(const EgressPool&, const EgressPool&) = default;
};

struct Tenant {
  std::string name;
  std::string pool = "default";
  bool priority = false;  // transactional: its jobs go before other tenants' in every queue
  std::vector<std::string> users;  // SMTP AUTH logins that send as this tenant (its own name too)
  friend bool operator==(const Tenant&, const Tenant&) = default;
};

// [campaign.NAME]: a campaign's cadence. Its messages are released into delivery evenly: spread
// over `window` from its first message (a burst is not sent at once), or at most `rate`.
struct Campaign {
  std::string name;
  Duration window{0};  // 0: no window
  Rate rate;           // 0/s: no rate
  friend bool operator==(const Campaign&, const Campaign&) = default;
};

struct EgressConfig {
  // Never empty after loading: without [source.*] there is one source "default" (the [delivery]
  // source_ip and helo_name) and one pool "default" holding it; with sources but no
  // [pool.default], "default" holds every source with weight 1.
  std::map<std::string, EgressSource> sources;
  std::map<std::string, EgressPool> pools;
  std::map<std::string, Tenant> tenants;
  std::map<std::string, Campaign> campaigns;
  std::map<std::string, WarmupSchedule> warmups;  // the built-in ones and the configuration's
  // Headers that tag a message at injection, removed before it is spooled.
  std::string tenant_header = "X-Tenant";
  std::string campaign_header = "X-Campaign";
  // The tenant an authenticated login sends as ("" when none names it).
  std::string tenant_of_user(std::string_view login) const;
  friend bool operator==(const EgressConfig&, const EgressConfig&) = default;
};

// [dkim."DOMAIN"] (src/config/dkim.cpp): keys that sign mail whose From domain is DOMAIN (or a
// subdomain of it), as it enters the spool (src/dkim/signer.h).
struct DkimKey {
  std::string selector;
  std::string key_path;  // PEM private key: RSA (2048 bits or more) or Ed25519
  friend bool operator==(const DkimKey&, const DkimKey&) = default;
};
struct DkimDomain {
  std::string domain;          // lower-case
  std::vector<DkimKey> keys;   // one signature each (RSA and Ed25519 side by side: RFC 8463)
  std::string header_canon = "relaxed", body_canon = "relaxed";
  std::vector<std::string> headers;   // signed once per instance present
  std::vector<std::string> oversign;  // signed once more than present: none can be added
  friend bool operator==(const DkimDomain&, const DkimDomain&) = default;
};
// What [dkim.*] signs when it names no headers (RFC 6376 5.4.1's advice, and the list headers
// that bulk mail carries), and what it oversigns.
const std::vector<std::string>& default_dkim_headers();
const std::vector<std::string>& default_dkim_oversign();

struct Config {
  std::string source;  // the file it was loaded from ("" for defaults)
  ServerConfig server;
  SmtpConfig smtp;
  HttpConfig http;
  SpoolConfig spool;
  LogConfig log;
  QueueConfig queue;
  DeliveryConfig delivery;
  ShapingConfig shaping;
  ClassifyConfig classify;
  DnsConfig dns;
  std::map<std::string, Route> routes;  // lower-case domain -> route
  TlsConfig tls;
  EgressConfig egress;
  std::map<std::string, DkimDomain> dkim;  // by lower-case signing domain
};

// The sections that differ between two configurations ("smtp", "queue", "shaping", "route",
// "egress"…), for a reload to say what it applied and what needs a restart.
std::vector<std::string> changed_sections(const Config& before, const Config& after);

struct ConfigError {
  std::string file;
  uint32_t line = 0;  // 1-based; 0 when unknown
  uint32_t column = 0;
  std::string key;  // dotted, e.g. "smtp.listen"; empty for syntax errors
  std::string message;

  // "etc/sluice.toml:12:1: smtp.listen: port must be 1..65535"
  std::string str() const;
};

using ConfigResult = Result<Config, std::vector<ConfigError>>;

// The whole content of a file (a config or data file); nullopt when it cannot be opened.
std::optional<std::string> read_text_file(const std::string& path);

// Loads and validates a file.
ConfigResult load_config_file(const std::string& path);

// Loads and validates TOML text; `name` is what errors call the file.
ConfigResult load_config_text(std::string_view text, const std::string& name);

}  // namespace sluice::config
