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
BENCH_NAME=injection
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# The command that reproduces this run: the script plus every setting given in the environment.
repro=$(repro_command bench/injection.sh QUICK MESSAGES MESSAGES_4K MESSAGES_100K CONCURRENCY REPEAT \
  TARGETS SLUICE_BIN RUN_TIMEOUT SINK_PORT POSTFIX_PORT SLUICE_PORT SLUICE_HTTP_PORT)

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

# ------------------------------------------------------------------------------------ targets
# install_postfix, start_sink, sink_messages, the Postfix helpers, cleanup and the bounded waits
# are in lib.sh.

# A private Postfix instance (lib.sh) relaying everything it accepts to the discard transport.
start_postfix() {
  start_postfix_instance \
    "default_transport = discard:sluice injection benchmark
relay_transport = discard:sluice injection benchmark" \
    "discard    unix  - - n -     - discard"
}

start_sluice() {
  sluice_usable || return 1
  # Every client is on 127.0.0.1: lift the per-address connection limit above the largest
  # client count (Postfix exempts mynetworks from its own), if this sluice knows the key.
  local max_clients
  max_clients=$(tr ' ' '\n' <<<"$CONCURRENCY" | sort -n | tail -1)
  # Acceptance only: [queue] hold keeps every accepted message in the spool, delivers nothing
  # (so nothing leaves loopback and delivery does not share the CPU with acceptance).
  write_sluice_toml "max_connections_per_ip = $(( max_clients + 10 ))" $'[queue]\nhold = true'
  sluice_check_config || write_sluice_toml "" $'[queue]\nhold = true'
  launch_sluice
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

# ---------------------------------------------------------------------------------------- run
[[ $(id -u) == 0 ]] || die "run as root: it installs postfix and starts a private instance"
install_postfix
command -v timeout >/dev/null || die "timeout (coreutils) not found"
make_work sluice-injection

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

sluice_version=$(sluice_version)
fs=$(filesystem)

cell() { echo "${rate[$1,$2,$3]:-—}"; }
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
  echo "below. Postfix discards as it goes; sluice (queue held) keeps every accepted message"
  echo "in its spool for the whole run."
  echo
  echo "- date: $date_utc"
  machine_line
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
