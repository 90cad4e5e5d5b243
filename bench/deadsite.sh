#!/usr/bin/env bash
# Dead destination (issue #10): how a sender treats a site where nothing works. COUNT messages
# go to one domain, routed to `sluice sim`, whose provider is down for DOWN seconds from its
# start and then accepts everything:
#
#   close    accepts each connection and closes it before any banner
#   refuse   does not listen (the kernel refuses the connection)
#   silent   accepts and never says anything (until it comes back)
#
# Senders, each a fresh instance: sluice on its defaults (dead destination: one probe at a time
# from 10 s, doubling up to 5 min; messages wait uncharged), and a private Postfix on its
# defaults (its dead-destination logic: the site is skipped after a failed cohort; deferred
# mail is retried at queue runs, minimal_backoff_time 300 s). smtp_connect_timeout and
# smtp_helo_timeout (Postfix) and connect_timeout/command_timeout (sluice) are SILENT_TIMEOUT
# for all modes, so that a silent host costs each sender the same per attempt.
#
# Figures per run:
#   attempts while down   connections the simulator saw while down (refused.down); for
#                         `refuse` the simulator sees none, so the sender's own count: sluice's
#                         TransientFailure records, Postfix's "connect to … refused" lines
#   delivered             distinct messages the simulator accepted by the cap
#   after recovery        seconds from the end of the outage until the last message arrived
#
# Usage (as root on Debian 12; installs postfix if missing):
#   bench/deadsite.sh                 MODES="close refuse silent", COUNT 2000, DOWN 60, CAP 420
#   QUICK=1 bench/deadsite.sh         MODES=close, COUNT 500, DOWN 20, CAP 120, sluice only
# Environment: MODES, SENDERS ("sluice postfix"), COUNT, DOWN, CAP, CLIENTS (5), SILENT_TIMEOUT
# (10s), SLUICE_BIN, SIM_PORT SLUICE_PORT SLUICE_HTTP_PORT POSTFIX_PORT (2960 2838 2839 2636),
# RESULTS_DIR, KEEP_WORK=1.
# Output: bench/results/deadsite-<date>.md, also printed.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BENCH_NAME=deadsite
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

repro=$(repro_command bench/deadsite.sh QUICK MODES SENDERS COUNT DOWN CAP CLIENTS SILENT_TIMEOUT \
  SLUICE_BIN SIM_PORT SLUICE_PORT SLUICE_HTTP_PORT POSTFIX_PORT)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  MODES=${MODES:-close}; SENDERS=${SENDERS:-sluice}; COUNT=${COUNT:-500}; DOWN=${DOWN:-20}
  CAP=${CAP:-120}
fi
MODES=${MODES:-"close refuse silent"}
SENDERS=${SENDERS:-"sluice postfix"}
COUNT=${COUNT:-2000}
DOWN=${DOWN:-60}
CAP=${CAP:-420}
CLIENTS=${CLIENTS:-5}
SILENT_TIMEOUT=${SILENT_TIMEOUT:-10s}
SLUICE_BIN=${SLUICE_BIN:-$ROOT/build/release/sluice}
SIM_PORT=${SIM_PORT:-2960}
SLUICE_PORT=${SLUICE_PORT:-2838}
SLUICE_HTTP_PORT=${SLUICE_HTTP_PORT:-2839}
POSTFIX_PORT=${POSTFIX_PORT:-2636}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
PORT_WAIT=10
DOMAIN=down.test
SLUICE_PID=""; SIM_PID=""; POSTFIX_DIR=""; EXTRA_PIDS=""; SINK_PID=""; HARAKA_DIR=""; HARAKA_PID=""

[[ " $SENDERS " == *" postfix "* ]] && install_postfix
make_work deadsite
mkdir -p "$WORK/sim"

start_sim() {   # MODE RUN
  SIM_STATS=$WORK/sim/$2.stats.json
  cat >"$WORK/sim/$2.toml" <<EOF
stats_file = "$SIM_STATS"
[[provider]]
name = "down"
listen = "127.0.0.1:$SIM_PORT"
down_for = "${DOWN}s"
down_mode = "$1"
EOF
  "$SLUICE_BIN" sim --config "$WORK/sim/$2.toml" </dev/null >/dev/null 2>"$WORK/sim/$2.err" &
  SIM_PID=$!
  EXTRA_PIDS=$SIM_PID
}

stop_sim() {
  [[ -n $SIM_PID ]] || return 0
  kill -TERM "$SIM_PID" 2>/dev/null || true
  wait_gone "$SIM_PID" 10 || kill -KILL "$SIM_PID" 2>/dev/null || true
  wait "$SIM_PID" 2>/dev/null || true
  SIM_PID=""
}

sim_stat() {   # KEY: accepted messages (unique) or refused.down, from the stats file
  python3 - "$SIM_STATS" "$1" <<'PY' 2>/dev/null || echo 0
import json, sys
p = json.load(open(sys.argv[1]))["providers"]["down"]
print(p["unique_message_ids"] if sys.argv[2] == "delivered" else p["refused"].get("down", 0))
PY
}

start_sender() {   # SENDER
  case $1 in
    sluice)
      rm -rf "$WORK/sluice"
      sluice_usable || return 1
      write_sluice_toml "" "[delivery]
connect_timeout = \"$SILENT_TIMEOUT\"
command_timeout = \"$SILENT_TIMEOUT\"

[route.\"$DOMAIN\"]
host = \"127.0.0.1\"
port = $SIM_PORT"
      launch_sluice ;;
    postfix)
      rm -rf "$WORK/postfix"; POSTFIX_DIR=""
      start_postfix_instance \
        "transport_maps = inline:{ $DOMAIN=smtp:[127.0.0.1]:$SIM_PORT }
default_transport = error:only $DOMAIN is relayed by this benchmark
relay_transport = error:only $DOMAIN is relayed by this benchmark
smtp_connect_timeout = $SILENT_TIMEOUT
smtp_helo_timeout = $SILENT_TIMEOUT" \
        "smtp       unix  - - n -     - smtp" ;;
  esac
}

stop_sender() {
  case $1 in
    sluice) if [[ -n $SLUICE_PID ]]; then kill -TERM "$SLUICE_PID" 2>/dev/null || true
              wait_gone "$SLUICE_PID" 15 || kill -KILL "$SLUICE_PID" 2>/dev/null || true
              wait "$SLUICE_PID" 2>/dev/null || true; SLUICE_PID=""; fi ;;
    postfix) stop_postfix_instance; POSTFIX_DIR="" ;;
  esac
}

sender_attempts() {   # SENDER: connection attempts the sender itself logged
  case $1 in
    sluice) sluice_events TransientFailure ;;
    postfix) postfix_log_count 'smtp\[[0-9]+\]: connect to .*(refused|timed out)|lost connection with .* while receiving the initial server greeting' ;;
  esac
}

ROWS=""
for mode in $MODES; do
  for s in $SENDERS; do
    run=$mode-$s
    start_sim "$mode" "$run"
    t0=$(date +%s.%N)
    if ! start_sender "$s"; then
      stop_sim; ROWS+="| $mode | $s | not measured | | | |"$'\n'; continue
    fi
    port=$SLUICE_PORT; [[ $s == postfix ]] && port=$POSTFIX_PORT
    timeout 60 smtp-source -A -c -d -s "$CLIENTS" -m "$COUNT" -l 2048 -f "sender@origin.test" \
      -t "rcpt@$DOMAIN" -M "client.$DOMAIN" "127.0.0.1:$port" >"$WORK/$run.inj" 2>&1 || true
    down_seen=""; done_at=""; el=0
    for ((i = 0; i < CAP * 2 + 10; i++)); do   # bounded: CAP seconds at 0.5 s a poll
      el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
      if [[ -z $down_seen ]] && awk -v e="$el" -v d="$DOWN" 'BEGIN { exit !(e >= d) }'; then
        down_seen=$(sim_stat down); sender_down=$(sender_attempts "$s")
      fi
      got=$(sim_stat delivered)
      if (( ${got:-0} >= COUNT )); then done_at=$el; break; fi
      awk -v e="$el" -v c="$CAP" 'BEGIN { exit !(e >= c) }' && break
      sleep 0.5
    done
    got=$(sim_stat delivered)
    [[ -n $down_seen ]] || { down_seen=$(sim_stat down); sender_down=$(sender_attempts "$s"); }
    attempts=$down_seen
    [[ $mode == refuse ]] && attempts="$sender_down (sender's count)"
    after="> $(awk -v c="$CAP" -v d="$DOWN" 'BEGIN { print c - d }') s"
    [[ -n $done_at ]] && after="$(awk -v t="$done_at" -v d="$DOWN" 'BEGIN { printf "%.1f s", t - d }')"
    ROWS+="| $mode | $s | $attempts | $got/$COUNT | $after |"$'\n'
    log "$run: attempts while down $attempts, delivered $got/$COUNT, after recovery $after"
    stop_sim; stop_sender "$s"; EXTRA_PIDS=""
  done
done

mkdir -p "$RESULTS_DIR"
report=$RESULTS_DIR/deadsite-$(date -u +%Y-%m-%d).md
[[ -e $report ]] && report=$RESULTS_DIR/deadsite-$(date -u +%Y-%m-%d-%H%M%S).md
{
  echo "# Dead destination: $COUNT messages to a site down for ${DOWN} s"
  echo
  echo "- command: \`$repro\`"
  machine_line
  echo "- sluice: $(sluice_version)"
  echo
  echo "| mode | sender | connection attempts while down | delivered | all delivered, after recovery |"
  echo "| --- | --- | --- | --- | --- |"
  printf '%s' "$ROWS"
} | tee "$report"
