#!/usr/bin/env bash
# Relay throughput, end to end (issue #4): messages per second through SMTP in -> durable queue ->
# SMTP out, timed from the start of the injection until a fast loopback sink has received every
# message (not until the injection finishes). Four paths in the same run:
#
#   ceiling    smtp-source straight into smtp-sink: one hop, nothing stored (what the client,
#              the sink and the loopback allow)
#   Postfix    smtp-source -> a private Postfix instance (own config, queue and ports; the system
#              instance and port 25 are never touched; fsync left at its default) -> its smtp
#              client -> the same smtp-sink. A transport map sends the bench domain to the sink;
#              destination concurrency raised to 50 so its defaults do not cripple it (the
#              report lists every setting that is not Postfix's default)
#   Haraka     smtp-source -> a private Haraka 3 instance (npm, cached under build/bench/haraka;
#              `haraka -i` in the temporary directory) relaying for 127.0.0.0/8 (relay plugin)
#              through its outbound queue (fsynced before the 250) and outbound engine, with a
#              per-domain route to the sink in smtp_forward.ini (HARAKA_MODE=forward: its
#              smtp_forward plugin instead, which spools nothing and answers with the sink's reply)
#   sluice     smtp-source -> `sluice serve` (generated configuration; spool and log in a
#              temporary directory) -> the same smtp-sink, through a [route."sluice-bench.invalid"]
#              override (no DNS). Skipped, with a note, when this sluice refuses the route
#              section, does not listen, delivers nothing to the sink during the warm-up, or exits
#
# Each path's own account is checked against the sink's count and reported: Postfix's log
# (queued, sent, sent over a reused connection, deferred/bounced), Haraka's log (queued,
# delivered) and sluice's event log (Reception, Delivery, TransientFailure/Bounce).
#
# The load client is Postfix's smtp-source: 1, 10 or 50 parallel clients, each sending one
# message after another over one connection (-d), 4 KiB of body in 78-character lines, HELO,
# no pipelining, as in injection.sh. The sink is smtp-sink with running counters (-c): written
# to a file it prints a line "sess=S quit=Q mesg=M" at every "." it receives, and a watcher
# follows that file (every 2 ms, new bytes only) to note the moment the count reaches N. A rate
# is N / (that moment - the start of smtp-source). Targets are measured in turn for each client
# count, REPEAT times, so machine noise hits all three alike; the table shows medians.
# Every run is bounded by `timeout`, every wait by a count and a time.
#
# Usage (as root on Debian 12; installs postfix if missing, as "No configuration"):
#   bench/relay.sh                 full run: 1, 10, 50 clients, 5000 messages, 3 runs; minutes
#   QUICK=1 bench/relay.sh         smoke run: 1 and 10 clients, 300 messages, 1 run
# Environment (all optional):
#   MESSAGES            messages per run (default 5000; QUICK: 300)
#   MESSAGE_SIZE        body bytes per message (smtp-source -l; default 4096)
#   CONCURRENCY         injecting client counts, e.g. "1 10 50" (default; QUICK: "1 10")
#   REPEAT              runs per cell; the table shows the median (default 3; QUICK: 1)
#   TARGETS             subset of "sink postfix haraka sluice" (default: all four; sink = the ceiling)
#   SLUICE_POOL         sluice sends from these addresses in one pool ("127.0.0.2 127.0.0.3"; default: none)
#   HARAKA_MODE         outbound (default: queue to disk, outbound delivery) or forward (smtp_forward)
#   HARAKA_NODES        Haraka's smtp.ini nodes (default cpus: one worker per core; Haraka: 1)
#   SLUICE_BIN          sluice binary (default build/release/sluice)
#   POSTFIX_CONCURRENCY Postfix's default_destination_concurrency_limit (default 50; Postfix: 20)
#   SLUICE_SITE_CONNECTIONS  sluice's [shaping.default] connection_limit (default 50, the same
#                       parallelism as Postfix; empty: sluice's own default)
#   RUN_TIMEOUT         seconds allowed for one smtp-source run (default 120)
#   DELIVERY_TIMEOUT    seconds the sink may take beyond that to receive everything (default 120)
#   SINK_IDLE           give up on a run when, after the injection ended, the sink has received
#                       nothing for this many seconds (default 10)
#   SINK_PORT POSTFIX_PORT HARAKA_PORT SLUICE_PORT SLUICE_HTTP_PORT   loopback ports
#                       (2727 2626 2930 2828 2829)
#   RESULTS_DIR         where the report goes (default bench/results)
#   KEEP_WORK=1         keep the temporary directory (configs, logs) for inspection
#
# Output: bench/results/relay-<date>.md (QUICK runs: relay-<date>-quick.md), also printed. A
# failed message is one the sink did not receive by the end of its run (rejected at injection,
# lost, or still queued); rates count messages the sink received.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# ---------------------------------------------------------------------------------- settings
BENCH_NAME=relay
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

repro=$(repro_command bench/relay.sh QUICK SLUICE_POOL MESSAGES MESSAGE_SIZE CONCURRENCY REPEAT TARGETS \
  SLUICE_BIN POSTFIX_CONCURRENCY SLUICE_SITE_CONNECTIONS HARAKA_MODE HARAKA_NODES RUN_TIMEOUT \
  DELIVERY_TIMEOUT SINK_IDLE SINK_PORT POSTFIX_PORT HARAKA_PORT SLUICE_PORT SLUICE_HTTP_PORT)

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  MESSAGES=${MESSAGES:-300}
  CONCURRENCY=${CONCURRENCY:-"1 10"}
  REPEAT=${REPEAT:-1}
else
  MESSAGES=${MESSAGES:-5000}
  CONCURRENCY=${CONCURRENCY:-"1 10 50"}
  REPEAT=${REPEAT:-3}
fi
MESSAGE_SIZE=${MESSAGE_SIZE:-4096}
TARGETS=${TARGETS:-"sink postfix haraka sluice"}
HARAKA_MODE=${HARAKA_MODE:-outbound}
HARAKA_NODES=${HARAKA_NODES:-cpus}
SLUICE_BIN=${SLUICE_BIN:-build/release/sluice}
POSTFIX_CONCURRENCY=${POSTFIX_CONCURRENCY:-50}
SLUICE_SITE_CONNECTIONS=${SLUICE_SITE_CONNECTIONS-50}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-120}
SINK_IDLE=${SINK_IDLE:-10}
SINK_PORT=${SINK_PORT:-2727}
POSTFIX_PORT=${POSTFIX_PORT:-2626}
HARAKA_PORT=${HARAKA_PORT:-2930}
SLUICE_PORT=${SLUICE_PORT:-2828}
SLUICE_HTTP_PORT=${SLUICE_HTTP_PORT:-2829}
RESULTS_DIR=${RESULTS_DIR:-bench/results}
DOMAIN="sluice-bench.invalid"             # .invalid (RFC 2606): never resolves anywhere
FROM="bench@$DOMAIN"
RCPT="rcpt@$DOMAIN"
PORT_WAIT=10                              # seconds to wait for a listener
WARMUP_MESSAGES=50

size_label() { awk -v b="$1" 'BEGIN { if (b % 1024 == 0) printf "%d KiB", b / 1024; else printf "%d B", b }'; }

# ------------------------------------------------------------------------------------ targets
# install_postfix, start_sink, the sink watcher, the Postfix helpers, cleanup and the bounded
# waits are in lib.sh.

# A private Postfix instance (lib.sh) whose only way out is its smtp client to the sink. Every
# line here is a non-default setting; the report repeats them with the reason for each.
start_postfix() {
  start_postfix_instance \
    "transport_maps = inline:{ $DOMAIN=smtp:[127.0.0.1]:$SINK_PORT }
default_transport = error:only $DOMAIN is relayed by this benchmark
relay_transport = error:only $DOMAIN is relayed by this benchmark
default_destination_concurrency_limit = $POSTFIX_CONCURRENCY" \
    "smtp       unix  - - n -     - smtp"
}
postfix_sent() {
  postfix_log_count "smtp\\[[0-9]+\\]: [0-9A-Za-z]+: to=<[^>]*>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$SINK_PORT,.* status=sent"
}
postfix_reused() {   # deliveries over a cached connection (Postfix logs conn_use=N, N >= 2)
  postfix_log_count "smtp\\[[0-9]+\\]: [0-9A-Za-z]+: to=<[^>]*>, relay=[^ ]*, conn_use=[0-9]+,.* status=sent"
}
postfix_not_sent() { postfix_log_count 'status=(deferred|bounced)'; }

# Haraka (lib.sh): installed from npm on first use, a private instance routing the bench domain
# to the sink. Not measured, with the reason, when npm or Haraka fail.
HARAKA_STATE="not measured (not in TARGETS)"
start_haraka() {
  [[ $HARAKA_MODE == outbound || $HARAKA_MODE == forward ]] || die "HARAKA_MODE must be outbound or forward"
  if ! install_haraka; then HARAKA_STATE="not measured (npm install of Haraka@3 failed)"; return 1; fi
  if ! start_haraka_instance 127.0.0.1 "$SINK_PORT" "$DOMAIN" "$HARAKA_MODE"; then
    HARAKA_STATE="not measured (did not start: $(grep -E 'ERROR|CRIT' "$HARAKA_LOG" 2>/dev/null | tail -1 | cut -c1-160))"
    return 1
  fi
  HARAKA_STATE="measured"
}

# sluice with a route for the bench domain to the sink. Tries, in order: the route plus a
# per-site connection limit like Postfix's (when SLUICE_SITE_CONNECTIONS is set), the route
# alone; refused both ways, sluice is not measured.
SLUICE_NOTE=""
start_sluice() {
  sluice_usable || return 1
  local route="[route.\"$DOMAIN\"]
host = \"127.0.0.1\"
port = $SINK_PORT"
  local smtp="max_connections_per_ip = 200"
  if [[ -n $SLUICE_SITE_CONNECTIONS ]]; then
    write_sluice_toml "$smtp" "[shaping.default]
connection_limit = $SLUICE_SITE_CONNECTIONS

$route"
    if ! sluice_check_config; then
      SLUICE_NOTE="[shaping.default] connection_limit refused ($(head -1 "$WORK/sluice/check-config.out")); sluice's default used"
      log "sluice: $SLUICE_NOTE"
      write_sluice_toml "$smtp" "$route"
    fi
  else
    write_sluice_toml "$smtp" "$route"
  fi
  if ! sluice_check_config; then
    local why
    why=$(head -3 "$WORK/sluice/check-config.out" | tr '\n' ' ')
    if grep -q 'route' "$WORK/sluice/check-config.out"; then
      SLUICE_STATE="not measured (route overrides not available yet)"
    else
      SLUICE_STATE="not measured (configuration refused: $why)"
    fi
    log "sluice: $SLUICE_STATE"
    log "sluice --check-config said: $why"
    return 1
  fi
  launch_sluice
}

# ---------------------------------------------------------------------------------- measuring
# run_once TARGET PORT CLIENTS COUNT: one timed run, from the start of smtp-source until the sink
# has received COUNT more messages (or gave up: SINK_IDLE without progress after the injection,
# or the deadline). Sets ACCEPTED (250s smtp-source got), DELIVERED (sink's count grew by),
# E2E (seconds to the last of them), INJ (seconds smtp-source ran), REASON, NOTE, CMD.
#   -A: do not abort on a rejection (each is a warning on stderr, counted as a failure)
#   -c: print a counter at each completed DATA (the last value is how many completed)
#   -d: keep each client's connection for its next message (as an injecting application does)
run_once() {
  local target=$1 port=$2 clients=$3 count=$4
  local out=$WORK/run.out err=$WORK/run.err flag=$WORK/injected
  local cmd=(smtp-source -A -c -d -s "$clients" -m "$count" -l "$MESSAGE_SIZE"
             -f "$FROM" -t "$RCPT" -M "client.$DOMAIN" "127.0.0.1:$port")
  CMD="timeout $RUN_TIMEOUT ${cmd[*]}"
  NOTE=""
  sink_settle || NOTE+="smtp-sink's counter still moving before the run; "
  local before
  before=$(sink_messages); before=${before:-0}
  rm -f "$flag"
  local deadline
  deadline=$(( $(date +%s) + RUN_TIMEOUT + DELIVERY_TIMEOUT + 1 ))
  sink_watch_start "$before" "$((before + count))" "$deadline" "$SINK_IDLE" "$flag" \
    || die "the sink watcher did not start"

  local t0 t1 rc=0
  t0=$(date +%s.%N)
  timeout "$RUN_TIMEOUT" "${cmd[@]}" >"$out" 2>"$err" || rc=$?
  t1=$(date +%s.%N)
  touch "$flag"
  sink_watch_result

  local completed rejected
  completed=$(tr '\r' '\n' <"$out" | grep -E '^[0-9]+$' | tail -1 || true)
  rejected=$(grep -c 'rejected\|warning' "$err" || true)
  ACCEPTED=$(( ${completed:-0} - rejected ))
  (( ACCEPTED < 0 )) && ACCEPTED=0
  (( ACCEPTED > count )) && ACCEPTED=$count
  DELIVERED=$(( WATCH_COUNT - before ))
  REASON=$WATCH_REASON
  INJ=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  E2E=$(awk -v a="$t0" -v b="$WATCH_TIME" 'BEGIN { printf "%.3f", b - a }')
  (( rc == 124 )) && NOTE+="smtp-source timed out after ${RUN_TIMEOUT}s; "
  (( rc != 0 && rc != 124 )) && NOTE+="smtp-source exit $rc: $({ grep -m1 . "$err" || true; } | cut -c1-120); "
  (( rejected > 0 )) && NOTE+="$rejected rejected at injection: $({ grep -m1 'rejected\|warning' "$err" || true; } | cut -c1-120); "
  case $REASON in
    complete) ;;
    idle) NOTE+="sink received $DELIVERED of $count (nothing new for ${SINK_IDLE}s after the injection); " ;;
    deadline) NOTE+="sink received $DELIVERED of $count (not all within $((RUN_TIMEOUT + DELIVERY_TIMEOUT))s); " ;;
    *) NOTE+="sink received $DELIVERED of $count ($REASON); " ;;
  esac
  return 0
}

# measure TARGET PORT CLIENTS COUNT: run_once plus the checks on the far side; sets RATE (msg/s
# end to end), FAILED, DETAIL (one line for the report), NOTE.
measure() {
  local target=$1 port=$2 clients=$3 count=$4
  local queued_before=0 sent_before=0 reused_before=0 notsent_before=0
  if [[ $target == postfix ]]; then
    queued_before=$(postfix_queued); sent_before=$(postfix_sent)
    reused_before=$(postfix_reused); notsent_before=$(postfix_not_sent)
  fi
  if [[ $target == haraka ]]; then
    queued_before=$(haraka_accepted); sent_before=$(haraka_delivered); notsent_before=$(haraka_not_sent)
  fi
  if [[ $target == sluice ]]; then
    queued_before=$(sluice_events Reception); sent_before=$(sluice_events Delivery)
    notsent_before=$(sluice_events 'TransientFailure|Bounce')
  fi
  run_once "$@"
  RATE=0
  if (( DELIVERED > 0 )); then
    RATE=$(awk -v n="$DELIVERED" -v t="$E2E" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
  fi
  FAILED=$(( count - DELIVERED ))
  (( FAILED < 0 )) && FAILED=0
  local inj_rate
  inj_rate=$(awk -v n="$ACCEPTED" -v t="$INJ" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
  DETAIL="$RATE msg/s: the sink had $DELIVERED at $E2E s; smtp-source ended at $INJ s ($ACCEPTED accepted: $inj_rate msg/s)"

  case $target in
    postfix)
      local drained=yes queued sent reused notsent i
      postfix_drain || drained=no
      for ((i = 0; i < 20; i++)); do     # postlogd writes asynchronously: bounded catch-up
        sent=$(( $(postfix_sent) - sent_before ))
        (( sent >= DELIVERED )) && break
        sleep 0.1
      done
      queued=$(( $(postfix_queued) - queued_before ))
      reused=$(( $(postfix_reused) - reused_before ))
      notsent=$(( $(postfix_not_sent) - notsent_before ))
      (( queued != ACCEPTED )) && NOTE+="postfix log shows $queued queued; "
      (( notsent > 0 )) && NOTE+="postfix log shows $notsent deferred/bounced; "
      [[ $drained == no ]] && NOTE+="postfix queue not empty after 60s ($(postfix_queue_files) files); "
      POSTFIX_VERIFY+="$clients clients, run ${RUN_NO:-1}: smtp-source got 250 for $ACCEPTED, qmgr saw $queued queued, smtp sent $sent to the sink ($reused over a reused connection, $((sent - reused)) on a new one), $notsent deferred/bounced, queue empty: $drained"$'\n'
      ;;
    haraka)
      local drained=yes queued sent notsent i
      [[ $HARAKA_MODE == outbound ]] && { haraka_drain || drained=no; }
      for ((i = 0; i < 20; i++)); do     # bounded catch-up of its log
        queued=$(( $(haraka_accepted) - queued_before ))
        sent=$(( $(haraka_delivered) - sent_before ))
        [[ $HARAKA_MODE == forward ]] && sent=$queued    # forwarded before the 250
        (( sent >= DELIVERED && queued >= ACCEPTED )) && break
        sleep 0.1
      done
      notsent=$(( $(haraka_not_sent) - notsent_before ))
      (( queued != ACCEPTED )) && NOTE+="haraka log shows $queued queued; "
      (( notsent > 0 )) && NOTE+="haraka log shows $notsent deferred/bounced lines; "
      [[ $drained == no ]] && NOTE+="haraka queue not empty after 60s ($(haraka_queue_files) files); "
      HARAKA_VERIFY+="$clients clients, run ${RUN_NO:-1}: smtp-source got 250 for $ACCEPTED, Haraka logged $queued queued (code=OK), $sent delivered, $notsent deferred/bounced lines, queue empty: $drained"$'\n'
      ;;
    sluice)
      local received delivered failed i
      for ((i = 0; i < 20; i++)); do     # the event log is written asynchronously: bounded
        delivered=$(( $(sluice_events Delivery) - sent_before ))
        (( delivered >= DELIVERED )) && break
        sleep 0.1
      done
      received=$(( $(sluice_events Reception) - queued_before ))
      failed=$(( $(sluice_events 'TransientFailure|Bounce') - notsent_before ))
      (( received != ACCEPTED )) && NOTE+="sluice log shows $received received; "
      (( failed > 0 )) && NOTE+="sluice log shows $failed TransientFailure/Bounce; "
      SLUICE_VERIFY+="$clients clients, run ${RUN_NO:-1}: smtp-source got 250 for $ACCEPTED, sluice logged $received Reception, $delivered Delivery, $failed TransientFailure/Bounce"$'\n'
      ;;
  esac
  # Anything arriving after the watcher stopped (duplicates, stragglers) shows up here.
  local late
  sink_settle || true
  late=$(( $(sink_messages) - (WATCH_COUNT) ))
  (( late > 0 )) && NOTE+="sink received $late more after the run ended; "
  log "$(printf '%-8s %3s clients: %s%s' "$target" "$clients" "$DETAIL" "${NOTE:+ — ${NOTE%; }}")"
}

# warm_up TARGET PORT: not recorded. Lets Postfix's master spawn its smtpd, cleanup and smtp
# processes and sluice open its spool, and checks that the path reaches the sink at all.
warm_up() {
  local target=$1 port=$2
  run_once "$target" "$port" 10 "$WARMUP_MESSAGES"
  [[ $target == postfix ]] && { postfix_drain || true; }
  [[ $target == haraka && $HARAKA_MODE == outbound ]] && { haraka_drain || true; }
  if (( DELIVERED == 0 )); then
    log "$target: warm-up: the sink received none of $WARMUP_MESSAGES messages (${NOTE%; })"
    return 1
  fi
  (( DELIVERED < WARMUP_MESSAGES )) && log "$target: warm-up: the sink received $DELIVERED of $WARMUP_MESSAGES (${NOTE%; })"
  return 0
}

# ---------------------------------------------------------------------------------------- run
[[ $(id -u) == 0 ]] || die "run as root: it installs postfix and starts a private instance"
install_postfix
command -v timeout >/dev/null || die "timeout (coreutils) not found"
command -v python3 >/dev/null || die "python3 not found (the sink watcher and fsync probe use it)"
command -v pgrep >/dev/null || die "pgrep (procps) not found"
make_work sluice-relay

date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
fsync_start=$(fsync_probe "$WORK" 2>/dev/null || echo "?")   # before any load
POSTFIX_VERIFY=""; SLUICE_VERIFY=""; HARAKA_VERIFY=""
POSTFIX_STATE="not measured (not in TARGETS)"
declare -A on=([sink]=0 [postfix]=0 [haraka]=0 [sluice]=0)    # targets that are up and measured
start_sink     # every path ends here
if has sink; then on[sink]=1; fi
if has postfix; then start_postfix; on[postfix]=1; POSTFIX_STATE="measured"; fi
if has haraka; then
  if start_haraka; then on[haraka]=1; else log "haraka: $HARAKA_STATE"; fi
fi
if has sluice; then
  if start_sluice; then on[sluice]=1; fi
else
  SLUICE_STATE="not measured (not in TARGETS)"
fi

# sluice_gone WHEN: true (and sluice switched off, SLUICE_STATE saying why) when the sluice
# process has exited.
sluice_gone() {
  kill -0 "$SLUICE_PID" 2>/dev/null && return 1
  on[sluice]=0
  SLUICE_STATE="$1 (its last words: $({ grep . "$WORK/sluice/stderr" || true; } | tail -1 | cut -c1-200))"
  log "sluice: $SLUICE_STATE"
  return 0
}

for t in sink postfix haraka sluice; do
  [[ ${on[$t]} == 1 ]] || continue
  port_var=${t^^}_PORT
  warm_ok=1
  warm_up "$t" "${!port_var}" || warm_ok=0
  [[ $t == sluice ]] && sluice_gone "not measured: sluice exited during the warm-up" && continue
  if [[ $warm_ok == 0 ]]; then
    on[$t]=0
    why="warm-up: the sink received none of $WARMUP_MESSAGES messages, $ACCEPTED accepted; ${NOTE%; }"
    case $t in
      sink) die "smtp-source -> smtp-sink does not work: ${NOTE%; }" ;;
      postfix) POSTFIX_STATE="not measured ($why)"; log "postfix: $POSTFIX_STATE"
               log "postfix log, last lines:"; tail -5 "$POSTFIX_LOG" >&2 || true ;;
      haraka) HARAKA_STATE="not measured ($why)"; log "haraka: $HARAKA_STATE"
              log "haraka log, last lines:"; tail -5 "$HARAKA_LOG" >&2 || true ;;
      sluice) SLUICE_STATE="not measured ($why; does this build deliver?)"
              log "sluice: $SLUICE_STATE" ;;
    esac
  fi
done

# rate: median msg/s; samples: every run's msg/s; fail: undelivered messages (all runs);
# details: every run's timing line; notes: what went wrong.
declare -A rate samples fail notes details
commands=""
t_start=$SECONDS
for clients in $CONCURRENCY; do
  for ((r = 1; r <= REPEAT; r++)); do
    for t in sink postfix haraka sluice; do
      [[ ${on[$t]} == 1 ]] || continue
      [[ $t == sluice ]] && sluice_gone "measured in part: sluice exited before $clients clients, run $r" && continue
      port_var=${t^^}_PORT
      RUN_NO=$r
      measure "$t" "${!port_var}" "$clients" "$MESSAGES"
      key=$t,$clients
      samples[$key]+="$RATE "
      fail[$key]=$(( ${fail[$key]:-0} + FAILED ))
      details[$key]+="  run $r: $DETAIL"$'\n'
      [[ -n $NOTE ]] && notes[$key]+="run $r: ${NOTE%; }; "
      (( r == 1 )) && commands+="$t: $CMD"$'\n'
    done
  done
  for t in sink postfix haraka sluice; do
    key=$t,$clients
    [[ -n ${samples[$key]:-} ]] && rate[$key]=$(median <<<"${samples[$key]}")
  done
done
elapsed=$(( SECONDS - t_start ))

# ------------------------------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
suffix=""; [[ $QUICK == 1 ]] && suffix="-quick"
report=$RESULTS_DIR/relay-$(date -u +%Y-%m-%d)$suffix.md
[[ -e $report ]] && report=$RESULTS_DIR/relay-$(date -u +%Y-%m-%d-%H%M%S)$suffix.md

cell() { echo "${rate[$1,$2]:-—}"; }
failcell() {
  local s="" t v
  for t in sink postfix haraka sluice; do
    v=${fail[$t,$1]:-0}
    [[ $v != 0 ]] && s+="$t: $v; "
  done
  s=${s%; }
  echo "${s:-0}"
}
label=$(size_label "$MESSAGE_SIZE")
pf() { postconf -c "$POSTFIX_DIR" -xh "$1" 2>/dev/null || echo "?"; }

{
  echo "# Relay throughput, end to end: smtp-source → MTA → smtp-sink"
  echo
  echo "Messages per second from the start of the injection until smtp-sink had received all of"
  echo "them: SMTP in, durable queue, SMTP out, over loopback. The injecting smtp-source clients"
  echo "keep their connections (-d). The ceiling is smtp-source straight into smtp-sink (one hop,"
  echo "nothing stored); Postfix and sluice store each message durably before their 250 and then"
  echo "relay it to the same smtp-sink, as does Haraka in its outbound mode (in its forward mode it"
  echo "stores nothing: it answers with the sink's reply). The end of a run is the moment smtp-sink's running counter"
  echo "(-c, one line per received message) reached N, seen by a watcher polling every 2 ms."
  echo "Figures compare paths within this run only."
  echo
  echo "- date: $date_utc"
  machine_line
  echo "- load average before the run: $loadavg_start (a build running beside lowers every figure)"
  echo "- queue/spool filesystem: $(filesystem); a 4 KiB write+fsync took ${fsync_start} µs before the run (median of 200)"
  echo "- Postfix $(postconf -d -h mail_version) (private instance, default fsync, smtp client to the sink) — $POSTFIX_STATE"
  echo "- Haraka $(haraka_version) on Node.js $(node --version 2>/dev/null || echo '?') (private instance, mode $HARAKA_MODE, nodes=$HARAKA_NODES) — $HARAKA_STATE"
  echo "- sluice: $(sluice_version) — $SLUICE_STATE${SLUICE_NOTE:+ ($SLUICE_NOTE)}"
  echo "- $MESSAGES messages of $label per run; median of $REPEAT run(s) per cell; measuring took $elapsed s"
  echo
  echo "Reproduce: \`$repro\`"
  echo
  echo "| size | clients | ceiling msg/s | Postfix msg/s | Haraka msg/s | sluice msg/s | sluice/Postfix | sluice/Haraka | sluice/ceiling | failures |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for clients in $CONCURRENCY; do
    s=$(cell sink "$clients"); p=$(cell postfix "$clients"); h=$(cell haraka "$clients"); l=$(cell sluice "$clients")
    echo "| $label | $clients | $s | $p | $h | $l | $(ratio "$l" "$p") | $(ratio "$l" "$h") | $(ratio "$l" "$s") | $(failcell "$clients") |"
  done
  echo
  echo "Every run (path clients: msg/s end to end, runs in order), then each run's timing: when the"
  echo "sink had all messages and when smtp-source had its last 250 (seconds from its start):"
  echo
  echo '```'
  [[ -z $commands ]] && echo "(no path was measured)"
  for clients in $CONCURRENCY; do
    for t in sink postfix haraka sluice; do
      key=$t,$clients
      [[ -n ${samples[$key]:-} ]] || continue
      echo "$t $clients: ${samples[$key]% }"
      printf '%s' "${details[$key]}"
      [[ -n ${notes[$key]:-} ]] && echo "  notes: ${notes[$key]%; }"
    done
  done
  echo '```'
  echo
  echo "Commands (each cell's first run; the others repeat it). The sink, throughout:"
  echo "\`smtp-sink -u nobody -c 127.0.0.1:$SINK_PORT 1000\`"
  echo
  echo '```'
  printf '%s' "$commands"
  echo '```'
  if [[ -n $POSTFIX_DIR && -f $POSTFIX_DIR/main.cf ]]; then
    echo
    echo "Postfix: every setting that differs from its defaults (\`postconf -n\`), and why:"
    echo
    echo '```'
    postconf -c "$POSTFIX_DIR" -n
    echo '```'
    echo
    echo "- queue_directory, data_directory, maillog_file(_prefixes), syslog_name: a private instance"
    echo "  in a temporary directory, logging to a file; the system instance is never touched"
    echo "- compatibility_level = 3.6: today's defaults rather than the Postfix 2.x compatibility ones"
    echo "- myhostname, mydestination (empty), alias_maps/alias_database (empty): no DNS lookup of its"
    echo "  own name, nothing delivered locally"
    echo "- inet_interfaces = 127.0.0.1, inet_protocols = ipv4, mynetworks = 127.0.0.0/8: loopback"
    echo "  only; the injecting clients may relay (permit_mynetworks)"
    echo "- transport_maps: $DOMAIN goes to smtp:[127.0.0.1]:$SINK_PORT (the sink, no MX lookup),"
    echo "  as sluice's [route] override does; default_transport and relay_transport = error, so"
    echo "  nothing else can leave"
    echo "- default_destination_concurrency_limit = $POSTFIX_CONCURRENCY (default 20): up to that many"
    echo "  parallel deliveries to the sink, matching the most injecting clients"
    echo "- master.cf: smtpd on 127.0.0.1:$POSTFIX_PORT; no chroot; only the services this instance uses"
    echo "  (smtp client, no local or discard transports)"
    echo
    echo "Defaults kept that shape the figures: smtp_connection_cache_on_demand = $(pf smtp_connection_cache_on_demand)"
    echo "(reuse connections to a destination with a backlog; see the reused counts below),"
    echo "smtp_connection_cache_time_limit = $(pf smtp_connection_cache_time_limit), initial_destination_concurrency = $(pf initial_destination_concurrency)"
    echo "(slow start), default_process_limit = $(pf default_process_limit), in_flow_delay = $(pf in_flow_delay) (smtpd/cleanup"
    echo "pause when the queue manager falls behind), smtp_destination_recipient_limit = $(pf smtp_destination_recipient_limit);"
    echo "queue files are fsynced before the 250 as shipped."
    echo
    echo "master.cf:"
    echo
    echo '```'
    grep -v '^$' "$POSTFIX_DIR/master.cf"
    echo '```'
  fi
  if [[ -n $HARAKA_DIR && -d $HARAKA_DIR/config ]]; then
    echo
    echo "Haraka: \`haraka -i DIR\` then these files of DIR/config written by the script (every other"
    echo "setting is Haraka's shipped default), installed with"
    echo "\`npm install --no-audit --no-fund --ignore-scripts Haraka@3\` in $HARAKA_CACHE; run as \`haraka -c DIR\`:"
    echo
    echo '```'
    for f in me plugins relay_acl_allow smtp.ini smtp_forward.ini; do
      echo "== config/$f"
      grep -v '^$' "$HARAKA_DIR/config/$f"
    done
    echo '```'
    echo
    echo "- plugins: relay (its ACL, relay_acl_allow, marks 127.0.0.0/8 clients as relaying: their mail"
    echo "  is outbound mail) and queue/smtp_forward (its per-domain [$DOMAIN] section is the route to"
    echo "  the sink, read by its get_mx hook, so no DNS). \`haraka -i\` enables mail_from.is_resolvable"
    echo "  and rcpt_to.in_host_list instead: inbound checks (the first needs DNS), not used by a relay"
    echo "- smtp.ini nodes=$HARAKA_NODES: Haraka warns when nodes is unset (one process) and its Performance"
    echo "  Tuning guide sets nodes=cpus; with it Haraka uses both cores, as Postfix and sluice do"
    if [[ $HARAKA_MODE == outbound ]]; then
      echo "- enable_outbound=false (Haraka's default): relayed mail goes to Haraka's outbound queue"
      echo "  (one file per message under DIR/queue, written through an fsyncing stream and renamed"
      echo "  before the 250: durable like Postfix and sluice) and its outbound engine delivers it with"
      echo "  retries (outbound.ini defaults: concurrency_max=100 per process, TLS opportunistic;"
      echo "  smtp-sink offers no STARTTLS). Haraka logs at level info (log.ini as \`haraka -i\` writes it)"
    else
      echo "- enable_outbound=true: queue/smtp_forward forwards each message to the sink at queue time"
      echo "  and answers the client with the sink's reply. **Not comparable for durability**: nothing is"
      echo "  spooled to disk before the 250 (the sink has already accepted the message), nothing is"
      echo "  retried; a deferral by the next hop goes back to the injecting client"
    fi
  fi
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
    echo "Postfix's side of every run, from its log (qmgr \"from=\", smtp \"status=sent\" with and"
    echo "without conn_use=):"
    echo
    echo '```'
    printf '%s' "$POSTFIX_VERIFY"
    echo '```'
  fi
  if [[ -n $HARAKA_VERIFY ]]; then
    echo
    echo "Haraka's side of every run, from its log (\"queue code=OK\" and \"[outbound] delivered\" lines;"
    echo "deferred/bounced counts outbound lines mentioning a deferral or bounce):"
    echo
    echo '```'
    printf '%s' "$HARAKA_VERIFY"
    echo '```'
  fi
  if [[ -n $SLUICE_VERIFY ]]; then
    echo
    echo "sluice's side of every run, from its event log (Reception, Delivery, TransientFailure and"
    echo "Bounce events):"
    echo
    echo '```'
    printf '%s' "$SLUICE_VERIFY"
    echo '```'
  fi
} >"$report"

cat "$report"
log "report: $report"
log "reproduce: $repro"
