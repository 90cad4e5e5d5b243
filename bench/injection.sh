#!/usr/bin/env bash
# Injection throughput (issue #3): how many messages per second an MTA ACCEPTS over SMTP from
# local clients, i.e. how fast it answers "250" after DATA. For a real MTA that 250 is a promise:
# the message is on disk (Postfix fsyncs its queue file before replying; sluice commits to its
# RocksDB spool). So we compare durable acceptance with durable acceptance, and both with a
# ceiling that stores nothing:
#
#   smtp-sink  Postfix's test server: replies 250 and throws the message away (the ceiling:
#              what the client and the loopback allow)
#   Postfix    a private Postfix instance (own config, queue and ports; the system instance and
#              port 25 are never touched), relaying everything to the discard transport so the
#              queue drains as fast as it fills; its durability (fsync) is left at its default
#   sluice     `sluice serve` on a generated configuration whose spool and log are in a
#              temporary directory; skipped, with a note, when its listener does not answer
#
# The load client is Postfix's smtp-source: 1, 10 or 50 parallel clients, each sending one
# message after another over one connection (-d), with 4 KiB or 100 KiB of body in 78-character
# lines. smtp-source says HELO (not EHLO) and does not pipeline: one round trip per command, as
# a simple injecting application would. Targets are measured in turn for each (size, clients)
# cell, REPEAT times, so machine noise hits all three alike; the table shows medians. A rate is
# accepted messages / wall-clock seconds of one whole smtp-source run. Every run is bounded by
# `timeout`, every wait by a count.
#
# Usage (as root on Debian 12; installs postfix if missing, as "No configuration"):
#   bench/injection.sh                 full run: 1, 10, 50 clients; a few minutes
#   QUICK=1 bench/injection.sh         smoke run: 1 and 10 clients, few messages; well under 1 min
# Environment (all optional):
#   MESSAGES            messages per run, both sizes (overrides the two below)
#   MESSAGES_4K         messages per run at 4 KiB   (default 2000; QUICK: 200)
#   MESSAGES_100K       messages per run at 100 KiB (default 500;  QUICK: 50)
#   CONCURRENCY         client counts, e.g. "1 10 50" (default; QUICK: "1 10")
#   REPEAT              runs per cell; the table shows the median (default 3; QUICK: 1)
#   TARGETS             subset of "sink postfix sluice" (default: all three)
#   SLUICE_BIN          sluice binary (default build/release/sluice)
#   RUN_TIMEOUT         seconds allowed for one smtp-source run (default 120)
#   SINK_PORT POSTFIX_PORT SLUICE_PORT SLUICE_HTTP_PORT   loopback ports (2727 2626 2828 2829)
#   RESULTS_DIR         where the report goes (default bench/results)
#   KEEP_WORK=1         keep the temporary directory (configs, logs) for inspection
#
# Output: bench/results/injection-<date>.md (QUICK runs: injection-<date>-quick.md), also
# printed. A failed message (anything but 2xx after DATA, a lost connection, a timeout) is
# counted in the table's failures column; rates count accepted messages only.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# ---------------------------------------------------------------------------------- settings
# The command that reproduces this run: the script plus every setting given in the environment.
repro=""
for v in QUICK MESSAGES MESSAGES_4K MESSAGES_100K CONCURRENCY REPEAT TARGETS SLUICE_BIN RUN_TIMEOUT \
         SINK_PORT POSTFIX_PORT SLUICE_PORT SLUICE_HTTP_PORT; do
  if [[ -n "${!v:-}" ]]; then repro+="$v=$(printf '%q' "${!v}") "; fi
done
repro+="bench/injection.sh"

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  MESSAGES_4K=${MESSAGES:-${MESSAGES_4K:-200}}
  MESSAGES_100K=${MESSAGES:-${MESSAGES_100K:-50}}
  CONCURRENCY=${CONCURRENCY:-"1 10"}
  REPEAT=${REPEAT:-1}
else
  MESSAGES_4K=${MESSAGES:-${MESSAGES_4K:-2000}}
  MESSAGES_100K=${MESSAGES:-${MESSAGES_100K:-500}}
  CONCURRENCY=${CONCURRENCY:-"1 10 50"}
  REPEAT=${REPEAT:-3}
fi
TARGETS=${TARGETS:-"sink postfix sluice"}
SLUICE_BIN=${SLUICE_BIN:-build/release/sluice}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
SINK_PORT=${SINK_PORT:-2727}
POSTFIX_PORT=${POSTFIX_PORT:-2626}
SLUICE_PORT=${SLUICE_PORT:-2828}
SLUICE_HTTP_PORT=${SLUICE_HTTP_PORT:-2829}
RESULTS_DIR=${RESULTS_DIR:-bench/results}
SIZES="4096 102400"                       # body bytes (smtp-source -l): 4 KiB and 100 KiB
FROM="bench@sluice-bench.invalid"         # .invalid (RFC 2606): never resolves, never delivered
RCPT="rcpt@sluice-bench.invalid"
PORT_WAIT=10                              # seconds to wait for a listener

log() { printf 'injection: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $TARGETS " == *" $1 "* ]]; }

# ------------------------------------------------------------------------------------ install
# smtp-source, smtp-sink, postfix and postconf all ship in Debian's `postfix`. Preseeded as
# "No configuration": no /etc/postfix/main.cf is written, so neither the init script nor the
# systemd unit (ConditionPathExists=/etc/postfix/main.cf) starts a system instance.
install_postfix() {
  local missing=0 c
  for c in smtp-source smtp-sink postfix postconf postqueue; do
    command -v "$c" >/dev/null || missing=1
  done
  [[ $missing == 0 ]] && return 0
  log "installing postfix (No configuration: no system instance is set up or started)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Installing postfix must not replace another MTA (exim4, sendmail, ...): refuse instead.
  if apt-get install -s -qq --no-install-recommends postfix | grep -q '^Remv'; then
    die "installing postfix would remove packages (another MTA?); not doing it:
$(apt-get install -s -qq --no-install-recommends postfix | grep '^Remv')"
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
  command -v smtp-source >/dev/null || die "postfix installed but smtp-source not found"
}

# ----------------------------------------------------------------------- processes and ports
WORK=""; SINK_PID=""; SLUICE_PID=""; POSTFIX_DIR=""; POSTFIX_LOG=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $SLUICE_PID ]] && kill -0 "$SLUICE_PID" 2>/dev/null; then
    kill -TERM "$SLUICE_PID" 2>/dev/null || true
    wait_gone "$SLUICE_PID" 15 || kill -KILL "$SLUICE_PID" 2>/dev/null || true
  fi
  if [[ -n $POSTFIX_DIR && -f $POSTFIX_DIR/main.cf ]]; then
    local master
    master=$(tr -d ' ' <"$WORK/postfix/queue/pid/master.pid" 2>/dev/null || true)
    postfix -c "$POSTFIX_DIR" stop >/dev/null 2>&1 || true
    if [[ -n $master ]] && ! wait_gone "$master" 15; then
      postfix -c "$POSTFIX_DIR" abort >/dev/null 2>&1 || true
      wait_gone "$master" 5 || true
    fi
  fi
  if [[ -n $SINK_PID ]]; then
    kill -TERM "$SINK_PID" 2>/dev/null || true
    wait_gone "$SINK_PID" 5 || kill -KILL "$SINK_PID" 2>/dev/null || true
  fi
  if [[ -n $WORK && -d $WORK ]]; then
    if [[ ${KEEP_WORK:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}

# wait_gone PID SECONDS: true once PID has exited (bounded).
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT SECONDS [PID]: true once something accepts on 127.0.0.1:PORT (bounded);
# false early if PID (the server) has exited.
wait_port() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    if [[ -n ${3:-} ]] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------------------------ targets
start_sink() {
  port_open "$SINK_PORT" && die "port $SINK_PORT is in use (set SINK_PORT)"
  # -c: running counters (sessions, messages) on stdout, read back to confirm what it received.
  smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 >"$WORK/sink.out" 2>"$WORK/sink.err" &
  SINK_PID=$!
  wait_port "$SINK_PORT" "$PORT_WAIT" "$SINK_PID" || die "smtp-sink did not listen: $(cat "$WORK/sink.err")"
}

# Messages smtp-sink has received so far (its last "mesg=N" counter).
sink_messages() {
  tr '\r' '\n' <"$WORK/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true
}

start_postfix() {
  port_open "$POSTFIX_PORT" && die "port $POSTFIX_PORT is in use (set POSTFIX_PORT)"
  # Config (root's), queue and data (the postfix user's) side by side, never one inside another:
  # postfix-script checks that everything under the config directory is root's.
  local base=$WORK/postfix
  POSTFIX_DIR=$base/etc
  mkdir -p "$POSTFIX_DIR" "$base/queue" "$base/data"
  chown postfix "$base/data"
  # Only what makes a private, loopback-only instance that discards what it accepts. Nothing
  # here changes how Postfix writes its queue files (fsync before "250" stays as shipped).
  cat >"$POSTFIX_DIR/main.cf" <<EOF
# sluice bench/injection.sh: private Postfix instance, deleted after the run
compatibility_level = 3.6
queue_directory = $base/queue
data_directory = $base/data
syslog_name = postfix-bench
maillog_file = $base/maillog
maillog_file_prefixes = $base
myhostname = postfix.sluice-bench.invalid
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = discard:sluice injection benchmark
relay_transport = discard:sluice injection benchmark
alias_maps =
alias_database =
EOF
  # Upstream defaults (no chroot: the queue is not set up as a chroot jail); only the services
  # this instance uses. No smtp/local transports: nothing can leave or be delivered locally.
  cat >"$POSTFIX_DIR/master.cf" <<EOF
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
  POSTFIX_LOG=$base/maillog
  postfix -c "$POSTFIX_DIR" start >"$WORK/postfix-start.out" 2>&1 \
    || die "postfix -c $POSTFIX_DIR start failed: $(cat "$WORK/postfix-start.out"; tail -5 "$POSTFIX_LOG")"
  wait_port "$POSTFIX_PORT" "$PORT_WAIT" || die "postfix did not listen on $POSTFIX_PORT"
}

# Count of maillog lines matching a regex (0 if none or no log yet).
postfix_log_count() {
  local n
  n=$(grep -cE "$1" "$POSTFIX_LOG" 2>/dev/null || true)
  echo "${n:-0}"
}
postfix_queued() { postfix_log_count 'qmgr\[[0-9]+\]: [0-9A-Za-z]+: from=<'; }
postfix_removed() { postfix_log_count 'qmgr\[[0-9]+\]: [0-9A-Za-z]+: removed'; }
postfix_queue_files() {
  { find "$WORK/postfix/queue/"{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null || true; } | wc -l
}

# Waits (bounded) until Postfix has discarded all it accepted, so one run's backlog does not
# slow the next; true when the queue is empty.
postfix_drain() {
  local i
  for ((i = 0; i < 600; i++)); do
    [[ $(postfix_queue_files) == 0 ]] && return 0
    sleep 0.1
  done
  return 1
}

# write_sluice_toml EXTRA_SMTP_LINE: etc/sluice.toml's settings with bench ports and a spool
# and log in the temporary directory.
SLUICE_TOML=""
write_sluice_toml() {
  SLUICE_TOML=$WORK/sluice/sluice.toml
  cat >"$SLUICE_TOML" <<EOF
# sluice bench/injection.sh: etc/sluice.toml with loopback bench ports and a temporary spool
[server]
hostname = "localhost"
threads = 0
shutdown_grace = "5s"

[smtp]
listen = "127.0.0.1:$SLUICE_PORT"
$1

[http]
listen = "127.0.0.1:$SLUICE_HTTP_PORT"

[spool]
path = "$WORK/sluice/spool"

[log]
path = "$WORK/sluice/log/sluice.jsonl"
EOF
}

SLUICE_STATE="not measured"
start_sluice() {
  if [[ ! -x $SLUICE_BIN ]]; then
    SLUICE_STATE="not measured (no binary at $SLUICE_BIN)"; log "sluice: $SLUICE_STATE"; return 1
  fi
  port_open "$SLUICE_PORT" && die "port $SLUICE_PORT is in use (set SLUICE_PORT)"
  mkdir -p "$WORK/sluice"
  # Every client is on 127.0.0.1: lift the per-address connection limit above the largest
  # client count (Postfix exempts mynetworks from its own), if this sluice knows the key.
  local max_clients
  max_clients=$(tr ' ' '\n' <<<"$CONCURRENCY" | sort -n | tail -1)
  write_sluice_toml "max_connections_per_ip = $(( max_clients + 10 ))"
  if ! timeout 10 "$SLUICE_BIN" serve --config "$SLUICE_TOML" --check-config >/dev/null 2>&1; then
    write_sluice_toml ""
  fi
  "$SLUICE_BIN" serve --config "$SLUICE_TOML" </dev/null \
    >"$WORK/sluice/stdout" 2>"$WORK/sluice/stderr" &
  SLUICE_PID=$!
  local i
  for ((i = 0; i < PORT_WAIT * 10; i++)); do   # the "Started" event, bounded
    grep -qE '"event": *"Started"' "$WORK/sluice/stderr" 2>/dev/null && break
    kill -0 "$SLUICE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if wait_port "$SLUICE_PORT" 5 "$SLUICE_PID"; then
    SLUICE_STATE="measured"; return 0
  fi
  if kill -0 "$SLUICE_PID" 2>/dev/null; then
    SLUICE_STATE="not measured (listener not available on 127.0.0.1:$SLUICE_PORT)"
  else
    SLUICE_STATE="not measured (sluice exited: $(tail -c 300 "$WORK/sluice/stderr" | tr '\n' ' '))"
  fi
  log "sluice: $SLUICE_STATE"
  return 1
}

# ---------------------------------------------------------------------------------- measuring
# measure TARGET PORT SIZE CLIENTS COUNT: runs smtp-source once; sets RATE, FAILED, CMD, NOTE.
#   -A: do not abort on a rejection (each is a warning on stderr, counted as a failure)
#   -c: print a counter at each completed DATA (the last value is how many completed)
#   -d: keep each client's connection for its next message (as an injecting application does)
measure() {
  local target=$1 port=$2 size=$3 clients=$4 count=$5
  local out=$WORK/run.out err=$WORK/run.err
  local cmd=(smtp-source -A -c -d -s "$clients" -m "$count" -l "$size"
             -f "$FROM" -t "$RCPT" -M client.sluice-bench.invalid "127.0.0.1:$port")
  CMD="timeout $RUN_TIMEOUT ${cmd[*]}"
  local sink_before=0 queued_before=0 removed_before=0
  [[ $target == sink ]] && sink_before=$(sink_messages)
  if [[ $target == postfix ]]; then queued_before=$(postfix_queued); removed_before=$(postfix_removed); fi

  local t0 t1 rc=0
  t0=$(date +%s.%N)
  timeout "$RUN_TIMEOUT" "${cmd[@]}" >"$out" 2>"$err" || rc=$?
  t1=$(date +%s.%N)

  local completed rejected accepted
  completed=$(tr '\r' '\n' <"$out" | grep -E '^[0-9]+$' | tail -1 || true)
  rejected=$(grep -c 'rejected\|warning' "$err" || true)
  accepted=$(( ${completed:-0} - rejected ))
  (( accepted < 0 )) && accepted=0
  (( accepted > count )) && accepted=$count
  FAILED=$(( count - accepted ))
  RATE=$(awk -v n="$accepted" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  NOTE=""
  (( rc == 124 )) && NOTE+="timed out after ${RUN_TIMEOUT}s; "
  (( rc != 0 && rc != 124 )) && NOTE+="smtp-source exit $rc: $(grep -m1 . "$err" | cut -c1-120); "
  (( rejected > 0 )) && NOTE+="$rejected rejected: $(grep -m1 'rejected\|warning' "$err" | cut -c1-120); "

  # Confirm on the server's side where it can tell us.
  case $target in
    sink)
      local sink_after got i
      for ((i = 0; i < 20; i++)); do    # its counter is printed as sessions end: bounded wait
        sink_after=$(sink_messages); got=$(( ${sink_after:-0} - ${sink_before:-0} ))
        (( got >= accepted )) && break
        sleep 0.1
      done
      (( got != accepted )) && NOTE+="smtp-sink counted $got messages; "
      ;;
    postfix)
      local drained=yes queued removed
      postfix_drain || drained=no
      queued=$(( $(postfix_queued) - queued_before ))
      removed=$(( $(postfix_removed) - removed_before ))
      (( queued != accepted )) && NOTE+="postfix log shows $queued queued; "
      [[ $drained == no ]] && NOTE+="postfix queue not empty after 60s ($(postfix_queue_files) files); "
      POSTFIX_VERIFY+="$size/$clients: smtp-source got 250 for $accepted, qmgr saw $queued committed, $removed discarded+removed, queue empty: $drained"$'\n'
      ;;
  esac
  log "$(printf '%-8s %6s B %3s clients: %6s msg/s  (%s accepted, %s failed) %s' \
    "$target" "$size" "$clients" "$RATE" "$accepted" "$FAILED" "$NOTE")"
}

# fsync_probe DIR: median microseconds of a 4 KiB append + fsync in DIR: what the promise behind
# each durable "250" costs on this disk, which a reader needs to interpret the durable columns.
fsync_probe() {
  python3 - "$1" <<'PY'
import os, statistics, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
times = []
for _ in range(200):
    t = time.perf_counter()
    os.write(fd, b"x" * 4096)
    os.fsync(fd)
    times.append(time.perf_counter() - t)
os.close(fd)
os.unlink(path)
print(round(statistics.median(times) * 1e6))
PY
}

# ---------------------------------------------------------------------------------------- run
[[ $(id -u) == 0 ]] || die "run as root: it installs postfix and starts a private instance"
install_postfix
command -v timeout >/dev/null || die "timeout (coreutils) not found"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-injection.XXXXXX")
chmod 755 "$WORK"     # the postfix user must reach its queue under here
trap cleanup EXIT INT TERM

date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
fsync_start=$(fsync_probe "$WORK" 2>/dev/null || echo "?")   # before any load: afterwards
# it measures the benchmark's own dirty data being written back
POSTFIX_VERIFY=""
declare -A on=([sink]=0 [postfix]=0 [sluice]=0)    # targets that are up and measured
if has sink; then start_sink; on[sink]=1; fi
if has postfix; then start_postfix; on[postfix]=1; fi
if has sluice; then
  if start_sluice; then on[sluice]=1; fi
else
  SLUICE_STATE="not measured (not in TARGETS)"
fi

# Warm-up, not recorded: lets Postfix's master spawn its smtpd/cleanup processes and sluice
# open its spool before anything is timed.
for t in sink postfix sluice; do
  [[ ${on[$t]} == 1 ]] || continue
  port_var=${t^^}_PORT
  timeout "$RUN_TIMEOUT" smtp-source -A -d -s 10 -m 50 -l 4096 -f "$FROM" -t "$RCPT" \
    -M client.sluice-bench.invalid "127.0.0.1:${!port_var}" >/dev/null 2>&1 \
    || log "$t: warm-up run failed"
done
if [[ ${on[postfix]} == 1 ]]; then postfix_drain || true; fi

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# rate: median msg/s; samples: every run's msg/s; fail: failed messages (all runs) and notes.
declare -A rate samples fail notes
commands=""
t_start=$SECONDS
for size in $SIZES; do
  count=$MESSAGES_4K; [[ $size == 102400 ]] && count=$MESSAGES_100K
  for clients in $CONCURRENCY; do
    for ((r = 1; r <= REPEAT; r++)); do
      for t in sink postfix sluice; do
        [[ ${on[$t]} == 1 ]] || continue
        port_var=${t^^}_PORT
        measure "$t" "${!port_var}" "$size" "$clients" "$count"
        key=$t,$size,$clients
        samples[$key]+="$RATE "
        fail[$key]=$(( ${fail[$key]:-0} + FAILED ))
        [[ -n $NOTE ]] && notes[$key]+="run $r: ${NOTE%; }; "
        (( r == 1 )) && commands+="$t: $CMD"$'\n'
      done
    done
    for t in sink postfix sluice; do
      key=$t,$size,$clients
      [[ -n ${samples[$key]:-} ]] && rate[$key]=$(median <<<"${samples[$key]}")
    done
  done
done
elapsed=$(( SECONDS - t_start ))

# ------------------------------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
suffix=""; [[ $QUICK == 1 ]] && suffix="-quick"
report=$RESULTS_DIR/injection-$(date -u +%Y-%m-%d)$suffix.md
[[ -e $report ]] && report=$RESULTS_DIR/injection-$(date -u +%Y-%m-%d-%H%M%S)$suffix.md

sluice_version="not available"
[[ -x $SLUICE_BIN ]] && sluice_version=$("$SLUICE_BIN" --version 2>/dev/null || echo "unknown")
fs=$(df -PT "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')

cell() { echo "${rate[$1,$2,$3]:-—}"; }
ratio() {   # ratio A B: A/B to two decimals, or — when either is missing or zero
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
    if (a == "" || b == "" || a == "—" || b == "—" || b + 0 == 0) print "—"; else printf "%.2f", a / b }'
}
failcell() {
  local s="" t v
  for t in sink postfix sluice; do
    v=${fail[$t,$1,$2]:-0}
    [[ $v != 0 ]] && s+="$t: $v; "
  done
  s=${s%; }
  echo "${s:-0}"
}

{
  echo "# Injection throughput: smtp-sink, Postfix, sluice"
  echo
  echo "Messages accepted per second (250 after DATA) by smtp-source clients over loopback,"
  echo "each client keeping its connection (-d). smtp-sink stores nothing (ceiling); Postfix and"
  echo "sluice store durably before replying. Rates count accepted messages over the wall-clock"
  echo "time of the whole smtp-source run. Figures compare targets within this run only."
  echo "Acceptance is what smtp-source counted (every 2xx after DATA); Postfix's log confirms it"
  echo "below. Postfix discards as it goes; sluice (no delivery yet) keeps every accepted message"
  echo "in its spool for the whole run."
  echo
  echo "- date: $date_utc"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
  echo "- load average before the run: $loadavg_start (a build running beside lowers every figure)"
  echo "- spool/queue filesystem: $fs; a 4 KiB write+fsync took ${fsync_start} µs before the run (median of 200)"
  echo "- Postfix $(postconf -d -h mail_version) (private instance, default fsync, discard transport)"
  echo "- sluice: $sluice_version — $SLUICE_STATE"
  echo "- messages per run: $MESSAGES_4K at 4 KiB, $MESSAGES_100K at 100 KiB; median of $REPEAT run(s) per cell; measuring took $elapsed s"
  echo
  echo "Reproduce: \`$repro\`"
  echo
  echo "| size | clients | smtp-sink msg/s | Postfix msg/s | sluice msg/s | sluice/Postfix | sluice/smtp-sink | failures |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for size in $SIZES; do
    label="4 KiB"; [[ $size == 102400 ]] && label="100 KiB"
    for clients in $CONCURRENCY; do
      s=$(cell sink "$size" "$clients"); p=$(cell postfix "$size" "$clients"); l=$(cell sluice "$size" "$clients")
      echo "| $label | $clients | $s | $p | $l | $(ratio "$l" "$p") | $(ratio "$l" "$s") | $(failcell "$size" "$clients") |"
    done
  done
  echo
  echo "Every run, msg/s (target size/clients: runs in order), then notes on failures:"
  echo
  echo '```'
  for size in $SIZES; do
    for clients in $CONCURRENCY; do
      for t in sink postfix sluice; do
        key=$t,$size,$clients
        [[ -n ${samples[$key]:-} ]] && echo "$t $size/$clients: ${samples[$key]% }"
        [[ -n ${notes[$key]:-} ]] && echo "  ${notes[$key]%; }"
      done
    done
  done
  echo '```'
  echo
  echo "Commands (each cell's first run; the others repeat it):"
  echo
  echo '```'
  printf '%s' "$commands"
  echo '```'
  if [[ -n $SLUICE_TOML && -f $SLUICE_TOML ]]; then
    echo
    echo "sluice's configuration (paths are a temporary directory, deleted after the run):"
    echo
    echo '```toml'
    grep -v '^$' "$SLUICE_TOML"
    echo '```'
  fi
  if [[ -n $POSTFIX_VERIFY ]]; then
    echo
    echo "Postfix's side of every run, from its log (qmgr \"from=\" and \"removed\" lines):"
    echo
    echo '```'
    printf '%s' "$POSTFIX_VERIFY"
    echo '```'
  fi
} >"$report"

cat "$report"
log "report: $report"
log "reproduce: $repro"
