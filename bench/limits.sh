#!/usr/bin/env bash
# Respecting limits (issue #5, table 3): how each sender copes with a receiving provider whose
# per-IP concurrent-connection limit it does not know. Each sender gets M messages for one
# domain, routed to `sluice sim` (the receiver simulator) on loopback, whose provider refuses
# connections from an IP that already has N open (421 at the banner by default):
#
#   N = 2, 5, 20   a static limit
#   drop           20 at first, 5 from DROP_AT (default 5 s) after the simulator started
#                  (limit_schedule): early enough that a sender which knows its limit is still
#                  sending when the limit falls
#
# Senders, each a fresh instance per run (empty queue), all reaching the simulator from 127.0.0.1:
#   oracle     `sluice serve` told the limit: [shaping.domain."limits.test"] connection_limit = N,
#              adaptive = false (5 for drop, its limit after DROP_AT). What knowing it is worth
#   sluice     `sluice serve` with its defaults: [shaping] learns the limit (slow start from 2,
#              connection_limit 32 as the maximum); nothing told
#   postfix    a private Postfix instance (lib.sh) with a transport map to the simulator and
#              Postfix's defaults otherwise (destination concurrency 20, slow start, backoff
#              300 s, queue run every 300 s)
#   haraka     a private Haraka 3 instance (lib.sh, as in relay.sh): outbound queue on disk,
#              its outbound engine, the route in smtp_forward.ini; defaults otherwise
#
# Each run: start the sender, start the simulator (its clock, and the schedule, start there),
# then smtp-source injects M messages into the sender (-d, CLIENTS clients, bounded by the cap)
# while the script polls the simulator's stats file (rewritten every second) until it has
# accepted M distinct messages or the cap has passed; then the simulator is stopped (it writes
# its final stats) and the sender. Figures come from the simulator's stats:
#   delivered by the cap     distinct Message-IDs it accepted (duplicates reported apart)
#   time to deliver all      from the start of the injection until the poll saw M (about 1 s
#                            resolution: the file is rewritten every second), or "> cap"
#   refused                  connections it refused for the concurrency limit
#   refused after 30 s       refused connections / connection attempts, in the timeline's
#                            seconds t >= 30 (uses the timeline's per-second "connections")
#   msg/s, vs oracle         delivered / (time to deliver all, or the cap), and its ratio to the
#                            oracle's figure for the same provider
#
# Usage (as root on Debian 12; installs postfix if missing, Haraka from npm into build/bench):
#   bench/limits.sh              full run: 4 providers x 4 senders, 10,000 messages, cap 300 s
#                                (up to ~45 minutes: Postfix and Haraka use the whole cap)
#   QUICK=1 bench/limits.sh      1,000 messages, cap 60 s (up to ~17 minutes)
# Environment (all optional):
#   MESSAGES        messages per run (default 10000; QUICK: 1000)
#   CAP             seconds per run, from the start of the injection (default 300; QUICK: 60)
#   PROVIDERS       subset of "2 5 20 drop" (default: all)
#   SENDERS         subset of "oracle sluice postfix haraka" (default: all)
#   CLIENTS         injecting smtp-source clients (default 5)
#   MESSAGE_SIZE    body bytes per message (default 4096)
#   LIMIT_STAGE     where the simulator refuses: banner (default), ehlo or mail
#   LIMIT_REPLY     the simulator's refusal (default "421 4.7.0 Too many concurrent connections
#                   from this IP, try again later"); a text no rule knows tests learning from
#                   behaviour
#   LIMIT_ACTION    reply (default) or hangup: the excess connection is closed without a word
#   TARPIT          the simulator's delay before each reply (default 5ms: about 20 ms per message
#                   per connection, so that throughput is made of connections, as against a
#                   distant receiver; "0ms": the injection is the bottleneck and N hardly matters)
#   SESSION_CAP     the simulator's max_messages_per_connection (default 0: none): with a cap,
#                   every sender reconnects now and then and so meets a limit that has dropped
#   DROP_FROM DROP_TO DROP_AT   the drop provider: limit DROP_FROM, DROP_TO from DROP_AT (20 5 5s)
#   SLUICE_MIN_BACKOFF          sluice's and the oracle's [queue] min_backoff (default: sluice's, 5m)
#   SLUICE_BIN      sluice binary, also the simulator (default build/release/sluice)
#   HARAKA_NODES    Haraka's smtp.ini nodes (default cpus)
#   SIM_PORT POSTFIX_PORT HARAKA_PORT SLUICE_PORT SLUICE_HTTP_PORT   (2950 2626 2930 2828 2829)
#   RESULTS_DIR     where the report goes (default bench/results)
#   KEEP_WORK=1     keep the temporary directory (configs, logs, every run's stats JSON)
#
# Output: bench/results/limits-<date>.md (QUICK: limits-<date>-quick.md), also printed; a
# progress line while waiting when stdout is a terminal. Without a simulator (no binary, or one
# without `sluice sim`) it prints "sim: not available" and stops without a report.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# ---------------------------------------------------------------------------------- settings
BENCH_NAME=limits
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

repro=$(repro_command bench/limits.sh QUICK SLUICE_POOL MESSAGES CAP PROVIDERS SENDERS CLIENTS MESSAGE_SIZE \
  LIMIT_STAGE LIMIT_REPLY LIMIT_ACTION TARPIT SESSION_CAP DROP_FROM DROP_TO DROP_AT SLUICE_MIN_BACKOFF SLUICE_BIN HARAKA_NODES SIM_PORT \
  POSTFIX_PORT HARAKA_PORT SLUICE_PORT SLUICE_HTTP_PORT)

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  MESSAGES=${MESSAGES:-1000}; CAP=${CAP:-60}
else
  MESSAGES=${MESSAGES:-10000}; CAP=${CAP:-300}
fi
PROVIDERS=${PROVIDERS:-"2 5 20 drop"}
SENDERS=${SENDERS:-"oracle sluice postfix haraka"}
CLIENTS=${CLIENTS:-5}
MESSAGE_SIZE=${MESSAGE_SIZE:-4096}
LIMIT_STAGE=${LIMIT_STAGE:-banner}
TARPIT=${TARPIT:-5ms}
SESSION_CAP=${SESSION_CAP:-0}
DROP_FROM=${DROP_FROM:-20}; DROP_TO=${DROP_TO:-5}; DROP_AT=${DROP_AT:-5s}
SLUICE_MIN_BACKOFF=${SLUICE_MIN_BACKOFF:-}
SLUICE_BIN=${SLUICE_BIN:-build/release/sluice}
HARAKA_NODES=${HARAKA_NODES:-cpus}
SIM_PORT=${SIM_PORT:-2950}
POSTFIX_PORT=${POSTFIX_PORT:-2626}
HARAKA_PORT=${HARAKA_PORT:-2930}
SLUICE_PORT=${SLUICE_PORT:-2828}
SLUICE_HTTP_PORT=${SLUICE_HTTP_PORT:-2829}
SINK_PORT=0                                # lib.sh's smtp-sink is not used here
RESULTS_DIR=${RESULTS_DIR:-bench/results}
DOMAIN="limits.test"                       # .test (RFC 2606): never resolves anywhere
FROM="bench@$DOMAIN"
RCPT="rcpt@$DOMAIN"
PORT_WAIT=10
LIMIT_REPLY=${LIMIT_REPLY:-"421 4.7.0 Too many concurrent connections from this IP, try again later"}
LIMIT_ACTION=${LIMIT_ACTION:-reply}
POLL=0.5                                   # seconds between looks at the stats file

for p in $PROVIDERS; do
  [[ $p == drop || $p =~ ^[0-9]+$ ]] || { echo "limits: PROVIDERS: '$p' is neither a number nor drop" >&2; exit 2; }
done
for s in $SENDERS; do
  [[ " oracle sluice postfix haraka " == *" $s "* ]] || { echo "limits: SENDERS: unknown '$s'" >&2; exit 2; }
done
[[ $CAP =~ ^[0-9]+$ && $MESSAGES =~ ^[0-9]+$ && $SESSION_CAP =~ ^[0-9]+$ ]] || { echo "limits: CAP, MESSAGES and SESSION_CAP are whole numbers" >&2; exit 2; }

# The simulator is a subcommand of sluice. Without it there is nothing to measure against.
if [[ ! -x $SLUICE_BIN ]] || ! timeout 10 "$SLUICE_BIN" sim --help >/dev/null 2>&1; then
  echo "sim: not available ($SLUICE_BIN has no \`sim\` subcommand or does not exist; build sluice first)"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "run as root: it installs postfix and starts private instances"
if [[ " $SENDERS " == *" postfix "* ]]; then install_postfix; fi
command -v smtp-source >/dev/null || install_postfix    # the injecting client ships with postfix
for c in timeout python3 pgrep; do command -v "$c" >/dev/null || die "$c not found"; done
make_work sluice-limits
mkdir -p "$WORK/sim" "$WORK/configs"

# ----------------------------------------------------------------------------- the simulator
SIM_PID=""; SIM_STATS=""; SIM_CMD=""
# provider_limit P: the limit a sender that knows it would use (drop: the later, lower one).
provider_limit() { if [[ $1 == drop ]]; then echo "$DROP_TO"; else echo "$1"; fi; }
provider_label() {
  if [[ $1 == drop ]]; then echo "$DROP_FROM → $DROP_TO at $DROP_AT"; else echo "N = $1"; fi
}

# write_sim_config P RUN: the simulator's TOML for provider P; stats go to a file per run.
write_sim_config() {
  local p=$1 run=$2 limit schedule=""
  SIM_STATS=$WORK/sim/$run.stats.json
  if [[ $p == drop ]]; then
    limit=$DROP_FROM
    schedule="limit_schedule = [ { at = \"$DROP_AT\", connection_limit = $DROP_TO } ]"
  else
    limit=$p
  fi
  cat >"$WORK/sim/$run.toml" <<EOF
# sluice bench/limits.sh: provider "$p"
stats_file = "$SIM_STATS"

[[provider]]
name = "limited"
listen = "127.0.0.1:$SIM_PORT"
connection_limit = $limit
limit_stage = "$LIMIT_STAGE"
limit_reply = "$LIMIT_REPLY"
limit_action = "$LIMIT_ACTION"
tarpit = "$TARPIT"
max_messages_per_connection = $SESSION_CAP
$schedule
EOF
}

# start_sim RUN: true once the simulator listens; false (SIM_WHY says why) otherwise.
SIM_WHY=""
start_sim() {
  local run=$1
  port_open "$SIM_PORT" && die "port $SIM_PORT is in use (set SIM_PORT)"
  SIM_CMD="$SLUICE_BIN sim --config $WORK/sim/$run.toml"
  "$SLUICE_BIN" sim --config "$WORK/sim/$run.toml" </dev/null >"$WORK/sim/$run.out" 2>"$WORK/sim/$run.err" &
  SIM_PID=$!
  EXTRA_PIDS="$SIM_PID"
  if wait_port "$SIM_PORT" "$PORT_WAIT" "$SIM_PID"; then return 0; fi
  SIM_WHY="it did not listen on 127.0.0.1:$SIM_PORT: $(tail -c 300 "$WORK/sim/$run.err" | tr '\n' ' ')"
  return 1
}

# stop_sim: TERM (it rewrites the stats file at exit), bounded.
stop_sim() {
  [[ -n $SIM_PID ]] || return 0
  kill -TERM "$SIM_PID" 2>/dev/null || true
  wait_gone "$SIM_PID" 10 || kill -KILL "$SIM_PID" 2>/dev/null || true
  wait "$SIM_PID" 2>/dev/null || true
  SIM_PID=""; EXTRA_PIDS=""
}

# Cheap reads of the stats file while a run goes on (no JSON parser: the first occurrence of a
# key is the single provider's). Empty when the file is not there yet.
stat_key() {
  { grep -o "\"$1\": *[0-9]*" "$SIM_STATS" 2>/dev/null || true; } | head -1 | grep -o '[0-9]*$' || true
}
sim_delivered() {   # distinct message IDs, or accepted messages when the IDs are not counted
  local u a
  u=$(stat_key unique_message_ids); a=$(stat_key accepted_messages)
  if [[ ${u:-0} == 0 ]]; then echo "${a:-0}"; else echo "$u"; fi
}

# sim_summary FILE: the final figures, one "key=value" per line (python3 reads the JSON).
sim_summary() {
  python3 - "$1" "$MESSAGES" <<'PY'
import json, sys
try:
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    p = next(iter(doc["providers"].values()))
except Exception as e:  # no file, half a file, another shape: say so, do not guess
    print("error=%s" % str(e).replace("\n", " ")[:160])
    sys.exit(0)
refused = p.get("refused", {})
timeline = p.get("timeline", [])
late = [e for e in timeline if e.get("t", 0) >= 30]
late_refused = sum(e.get("refused_connections", 0) for e in late)
has_conn = all("connections" in e for e in late)
late_conn = sum(e.get("connections", 0) for e in late)
accepted = p.get("accepted_messages", 0)
unique = p.get("unique_message_ids", 0)
peak = max(p.get("peak_concurrency", {}).values() or [0])
out = {
    "uptime_ms": doc.get("uptime_ms", 0),
    "accepted": accepted,
    "delivered": unique if unique else accepted,
    "duplicates": p.get("duplicate_message_ids", 0),
    "connections": p.get("connections", 0),
    "refused_limit": refused.get("connection_limit", 0),
    "refused_other": sum(v for k, v in refused.items() if k != "connection_limit"),
    "late_refused": late_refused,
    "late_attempts": late_conn if has_conn else "",
    "late_seconds": len(late),
    "peak": peak,
    "limit_now": p.get("connection_limit_now", ""),
}
for k, v in out.items():
    print("%s=%s" % (k, v))
PY
}

# --------------------------------------------------------------------------------- the senders
stop_sluice() {
  [[ -n $SLUICE_PID ]] || return 0
  kill -TERM "$SLUICE_PID" 2>/dev/null || true
  wait_gone "$SLUICE_PID" 15 || kill -KILL "$SLUICE_PID" 2>/dev/null || true
  wait "$SLUICE_PID" 2>/dev/null || true
  SLUICE_PID=""
}

# start_sender SENDER PROVIDER: a fresh instance (empty queue) routing DOMAIN to the simulator.
# False, with START_WHY, when it cannot run.
START_WHY=""
start_sender() {
  local s=$1 p=$2
  START_WHY=""
  case $s in
    oracle|sluice)
      rm -rf "$WORK/sluice"
      sluice_usable || { START_WHY=$SLUICE_STATE; return 1; }
      local more=""
      if [[ -n $SLUICE_MIN_BACKOFF ]]; then
        more+="[queue]
min_backoff = \"$SLUICE_MIN_BACKOFF\"

"
      fi
      if [[ $s == oracle ]]; then
        # Told the limit: exactly N connections, no learning (the issue's oracle shape).
        more+="[shaping.domain.\"$DOMAIN\"]
connection_limit = $(provider_limit "$p")
adaptive = false

"
      fi
      more+="[route.\"$DOMAIN\"]
host = \"127.0.0.1\"
port = $SIM_PORT"
      write_sluice_toml "" "$more"
      if ! sluice_check_config; then
        START_WHY="configuration refused: $(head -2 "$WORK/sluice/check-config.out" | tr '\n' ' ')"
        return 1
      fi
      cp "$SLUICE_TOML" "$WORK/configs/$s.toml"
      launch_sluice || { START_WHY=$SLUICE_STATE; return 1; }
      ;;
    postfix)
      rm -rf "$WORK/postfix"; POSTFIX_DIR=""
      start_postfix_instance \
        "transport_maps = inline:{ $DOMAIN=smtp:[127.0.0.1]:$SIM_PORT }
default_transport = error:only $DOMAIN is relayed by this benchmark
relay_transport = error:only $DOMAIN is relayed by this benchmark" \
        "smtp       unix  - - n -     - smtp"
      postconf -c "$POSTFIX_DIR" -n >"$WORK/configs/postfix.txt"
      ;;
    haraka)
      rm -rf "$WORK/haraka"
      install_haraka || { START_WHY="npm install of Haraka@3 failed"; return 1; }
      if ! start_haraka_instance 127.0.0.1 "$SIM_PORT" "$DOMAIN" outbound; then
        START_WHY="Haraka did not start: $(grep -E 'ERROR|CRIT' "$HARAKA_LOG" 2>/dev/null | tail -1 | cut -c1-160)"
        return 1
      fi
      local f
      for f in plugins relay_acl_allow smtp.ini smtp_forward.ini; do
        echo "== config/$f"; grep -v '^$' "$HARAKA_DIR/config/$f"
      done >"$WORK/configs/haraka.txt"
      ;;
  esac
}

sender_port() {
  case $1 in oracle|sluice) echo "$SLUICE_PORT" ;; postfix) echo "$POSTFIX_PORT" ;; haraka) echo "$HARAKA_PORT" ;; esac
}

# sender_alive SENDER: false once the sender's process has gone.
sender_alive() {
  case $1 in
    oracle|sluice) kill -0 "$SLUICE_PID" 2>/dev/null ;;
    haraka) kill -0 "$HARAKA_PID" 2>/dev/null ;;
    postfix) local m; m=$(tr -d ' ' <"$WORK/postfix/queue/pid/master.pid" 2>/dev/null || true)
             [[ -n $m ]] && kill -0 "$m" 2>/dev/null ;;
  esac
}


# sender_account SENDER: one line of the sender's own account, from its log (bounded reads).
sender_account() {
  case $1 in
    oracle|sluice)
      local r d t
      r=$(sluice_events Reception); d=$(sluice_events Delivery); t=$(sluice_events 'TransientFailure|Bounce')
      echo "sluice logged $r Reception, $d Delivery, $t TransientFailure/Bounce" ;;
    postfix)
      echo "Postfix logged $(postfix_queued) queued, $(postfix_log_count 'status=sent') sent, $(postfix_log_count 'status=deferred') deferred, $(postfix_log_count 'status=bounced') bounced" ;;
    haraka)
      echo "Haraka logged $(haraka_accepted) queued (code=OK), $(haraka_delivered) delivered, $(haraka_not_sent) deferral/bounce lines" ;;
  esac
}

stop_sender() {
  case $1 in
    oracle|sluice) stop_sluice ;;
    postfix) stop_postfix_instance; POSTFIX_DIR="" ;;
    haraka) stop_haraka ;;
  esac
}

# ---------------------------------------------------------------------------------- measuring
TTY=0; [[ -t 1 ]] && TTY=1
progress() { [[ $TTY == 1 ]] && printf '\r%-110s' "$1"; return 0; }
progress_end() { [[ $TTY == 1 ]] && printf '\r%-110s\r' ""; return 0; }

# run_cell PROVIDER SENDER: one run. Sets R_* (figures) and R_NOTE.
run_cell() {
  local p=$1 s=$2 run="$1-$2"
  local port inj_out=$WORK/$run.inj.out inj_err=$WORK/$run.inj.err
  R_DELIVERED=""; R_TIME=""; R_REFUSED=""; R_LATE=""; R_RATE=""; R_PEAK=""; R_NOTE=""; R_ACCOUNT=""
  R_DUP=""; R_INJ=""
  write_sim_config "$p" "$run"
  if ! start_sender "$s" "$p"; then
    R_NOTE="sender not started: $START_WHY"; stop_sender "$s"; log "$run: $R_NOTE"; return 0
  fi
  if ! start_sim "$run"; then
    stop_sim; stop_sender "$s"
    if [[ $RUNS_DONE == 0 ]]; then
      echo "sim: not available ($SIM_WHY)"
      exit 0     # the trap cleans up
    fi
    R_NOTE="not measured: simulator: $SIM_WHY"; log "$run: $R_NOTE"; return 0
  fi
  port=$(sender_port "$s")
  local cmd=(smtp-source -A -c -d -s "$CLIENTS" -m "$MESSAGES" -l "$MESSAGE_SIZE"
             -f "$FROM" -t "$RCPT" -M "client.$DOMAIN" "127.0.0.1:$port")
  INJ_CMD="timeout $CAP ${cmd[*]}"
  local t0 inj_pid
  t0=$(date +%s.%N)
  timeout "$CAP" "${cmd[@]}" >"$inj_out" 2>"$inj_err" &
  inj_pid=$!
  EXTRA_PIDS="$SIM_PID $inj_pid"

  # Wait, bounded in time (CAP) and in count (polls), for all M at the simulator.
  local i el=0 got=0 done_at="" inj_end="" why="cap"
  local max_polls=$(( CAP * 3 + 20 ))
  for ((i = 0; i < max_polls; i++)); do
    el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    got=$(sim_delivered)
    if [[ -z $inj_end ]] && ! kill -0 "$inj_pid" 2>/dev/null; then inj_end=$el; fi
    if (( ${got:-0} >= MESSAGES )); then done_at=$el; why="all"; break; fi
    if awk -v e="$el" -v c="$CAP" 'BEGIN { exit !(e >= c) }'; then break; fi
    if ! kill -0 "$SIM_PID" 2>/dev/null; then why="sim"; break; fi
    if ! sender_alive "$s"; then why="sender"; break; fi
    progress "limits: $(provider_label "$p") $s: ${el}s of ${CAP}s, delivered ${got:-0}/$MESSAGES, refused $(stat_key connection_limit)"
    sleep "$POLL"
  done
  progress_end
  local sim_err=""
  if [[ $why == sim ]]; then
    sim_err=$({ grep -v '"event"' "$WORK/sim/$run.err" || true; } | tail -2 | tr '\n' ' ' | cut -c1-200)
    SIM_CRASHES=$((SIM_CRASHES + 1))
  else
    SIM_CRASHES=0
  fi
  stop_sim
  R_ACCOUNT=$(sender_account "$s")
  kill -TERM "$inj_pid" 2>/dev/null || true
  wait "$inj_pid" 2>/dev/null || true
  stop_sender "$s"
  EXTRA_PIDS=""
  RUNS_DONE=$((RUNS_DONE + 1))

  local completed rejected
  completed=$(tr '\r' '\n' <"$inj_out" | grep -E '^[0-9]+$' | tail -1 || true)
  rejected=$(grep -c 'rejected\|warning' "$inj_err" || true)
  R_INJ="$(( ${completed:-0} - rejected )) accepted by the sender${inj_end:+, injection ended at ${inj_end} s}"

  declare -A st=()
  local line
  while IFS= read -r line; do st[${line%%=*}]=${line#*=}; done < <(sim_summary "$SIM_STATS")
  if [[ -n ${st[error]:-} ]]; then
    R_NOTE+="simulator stats unreadable (${st[error]}); "
  else
    R_DELIVERED=${st[delivered]}
    R_DUP=${st[duplicates]}
    R_REFUSED=${st[refused_limit]}
    R_PEAK=${st[peak]}
    if [[ -z ${st[late_attempts]} ]]; then
      R_LATE="?"; R_NOTE+="the timeline has no per-second connections: refused after 30 s not computed; "
    elif (( st[late_attempts] == 0 )); then
      R_LATE="—"
    else
      R_LATE=$(awk -v r="${st[late_refused]}" -v a="${st[late_attempts]}" 'BEGIN { printf "%.1f%% (%d/%d)", 100 * r / a, r, a }')
    fi
    (( st[refused_other] > 0 )) && R_NOTE+="${st[refused_other]} refusals of other kinds; "
    (( st[duplicates] > 0 )) && R_NOTE+="${st[duplicates]} duplicate deliveries; "
  fi
  if [[ $why == all ]]; then
    R_TIME=$done_at
    R_RATE=$(awk -v n="$MESSAGES" -v t="$done_at" 'BEGIN { printf "%.1f", (t > 0 ? n / t : 0) }')
  else
    R_TIME="> $CAP"
    local span=$el
    R_RATE=$(awk -v n="${R_DELIVERED:-0}" -v t="$span" 'BEGIN { printf "%.1f", (t > 0 ? n / t : 0) }')
    case $why in
      sim) R_NOTE+="the simulator exited after ${el} s ($sim_err); " ;;
      sender) R_NOTE+="the sender exited after ${el} s; " ;;
    esac
  fi
  (( rejected > 0 )) && R_NOTE+="$rejected rejected at injection: $({ grep -m1 'rejected\|warning' "$inj_err" || true; } | cut -c1-100); "
  log "$(provider_label "$p") $s: delivered ${R_DELIVERED:-?}/$MESSAGES, all at ${R_TIME} s, refused ${R_REFUSED:-?}, after 30 s ${R_LATE:-?}, ${R_RATE} msg/s; ${R_INJ}; ${R_ACCOUNT}${R_NOTE:+ — ${R_NOTE%; }}"
}

# sim_preflight: the simulator starts on a provider's configuration, listens, and survives one
# SMTP session delivering one message (python3's smtplib); otherwise "sim: not available" and a
# clean stop (no report).
sim_preflight() {
  local p
  p=${PROVIDERS%% *}
  write_sim_config "$p" preflight
  if ! start_sim preflight; then
    stop_sim; echo "sim: not available ($SIM_WHY)"; exit 0
  fi
  local out
  out=$(timeout 20 python3 - "$SIM_PORT" "$FROM" "$RCPT" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.sendmail(sys.argv[2], [sys.argv[3]], "Subject: preflight\r\nMessage-ID: <preflight@limits.test>\r\n\r\nx\r\n")
s.quit()
PY
) || true
  sleep 0.3
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    local why
    why=$({ grep -v '"event"' "$WORK/sim/preflight.err" || true; } | tail -2 | tr '\n' ' ' | cut -c1-200)
    stop_sim
    echo "sim: not available (it exited during a one-message probe session: ${why:-no message}; client: $(echo "$out" | tail -1 | cut -c1-120))"
    exit 0
  fi
  stop_sim
  [[ -z $out ]] || log "sim preflight: the probe message was not accepted ($(echo "$out" | tail -1 | cut -c1-160)); measuring anyway"
}

# ----------------------------------------------------------------------------------------- run
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
fsync_start=$(fsync_probe "$WORK" 2>/dev/null || echo "?")
declare -A c_del c_time c_ref c_late c_rate c_peak c_note c_acc c_inj c_dup
RUNS_DONE=0; SIM_CRASHES=0; INJ_CMD=""; STOPPED=""
sim_preflight
t_start=$SECONDS
for p in $PROVIDERS; do
  for s in $SENDERS; do
    if (( SIM_CRASHES >= 2 )); then
      STOPPED="stopped early: the simulator exited during two runs in a row"
      log "$STOPPED"; break 2
    fi
    run_cell "$p" "$s"
    key=$p,$s
    c_del[$key]=$R_DELIVERED; c_time[$key]=$R_TIME; c_ref[$key]=$R_REFUSED; c_late[$key]=$R_LATE
    c_rate[$key]=$R_RATE; c_peak[$key]=$R_PEAK; c_note[$key]=$R_NOTE; c_acc[$key]=$R_ACCOUNT
    c_inj[$key]=$R_INJ; c_dup[$key]=$R_DUP
  done
done
elapsed=$(( SECONDS - t_start ))

# -------------------------------------------------------------------------------------- report
mkdir -p "$RESULTS_DIR"
suffix=""; [[ $QUICK == 1 ]] && suffix="-quick"
report=$RESULTS_DIR/limits-$(date -u +%Y-%m-%d)$suffix.md
[[ -e $report ]] && report=$RESULTS_DIR/limits-$(date -u +%Y-%m-%d-%H%M%S)$suffix.md

{
  echo "# Respecting limits: senders against a provider with an unknown per-IP connection limit"
  echo
  echo "Each sender gets $MESSAGES messages for $DOMAIN, routed to \`sluice sim\`, whose provider"
  if [[ $LIMIT_ACTION == hangup ]]; then
    echo "hangs up without a word (at the $LIMIT_STAGE stage) on a connection from an IP that already"
  else
    echo "refuses (\`$LIMIT_REPLY\` at the $LIMIT_STAGE stage) a connection from an IP that already"
  fi
  echo "has N open, and answers each command after $TARPIT (tarpit: a receiver that takes time, so"
  echo "throughput is made of connections)$( ((SESSION_CAP > 0)) && echo ", and closes a connection after $SESSION_CAP messages (a per-session cap)"). The oracle is sluice told N; the others are not told. Each run is capped at"
  echo "$CAP s from the start of the injection. Figures compare senders within this run only."
  echo
  echo "- date: $date_utc"
  machine_line
  echo "- load average before the run: $loadavg_start (a build running beside lowers every figure)"
  echo "- queue/spool filesystem: $(filesystem); a 4 KiB write+fsync took ${fsync_start} µs before the run (median of 200)"
  echo "- sluice and the simulator: $(sluice_version)"
  echo "- Postfix $(postconf -d -h mail_version 2>/dev/null || echo '?'); Haraka $(haraka_version || true) on Node.js $(node --version 2>/dev/null || echo '?')"
  echo "- $MESSAGES messages of $MESSAGE_SIZE bytes per run, injected by $CLIENTS smtp-source clients; one run per cell; measuring took $elapsed s${STOPPED:+; $STOPPED}"
  echo
  echo "Reproduce: \`$repro\`"
  echo
  echo "| provider limit | sender | delivered by the cap | time to deliver all (s) | connections refused | refused after 30 s | msg/s | vs oracle | peak concurrency | duplicates |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for p in $PROVIDERS; do
    for s in $SENDERS; do
      key=$p,$s
      [[ -n ${c_del[$key]+x} ]] || continue
      echo "| $(provider_label "$p") | $s | ${c_del[$key]:-—} | ${c_time[$key]:-—} | ${c_ref[$key]:-—} | ${c_late[$key]:-—} | ${c_rate[$key]:-—} | $(ratio "${c_rate[$key]:-}" "${c_rate[$p,oracle]:-}") | ${c_peak[$key]:-—} | ${c_dup[$key]:-—} |"
    done
  done
  echo
  echo "- delivered: distinct Message-IDs the simulator accepted (its \`unique_message_ids\`)"
  echo "- time to deliver all: from the start of smtp-source until the stats file (rewritten every"
  echo "  second, polled every ${POLL} s) showed all $MESSAGES: about 1 s resolution; \"> $CAP\": not all by the cap"
  echo "- connections refused: the simulator's \`refused.connection_limit\`; peak concurrency: its"
  echo "  \`peak_concurrency\` for 127.0.0.1; duplicates: messages it accepted more than once"
  echo "- refused after 30 s: refused connections / connection attempts (accepted + refused) over the"
  echo "  timeline's seconds t ≥ 30 counted from the simulator's start (which precedes the injection by"
  echo "  well under a second); — when no connection was attempted then"
  echo "- msg/s: delivered / time to deliver all (or / the time the run lasted); vs oracle: that figure"
  echo "  over the oracle's for the same provider"
  if [[ " $PROVIDERS " == *" drop "* ]]; then
    echo "- $(provider_label drop): a sender that has delivered everything before $DROP_AT never met the lower"
    echo "  limit (that row then repeats N = $DROP_FROM), while the oracle is held to $DROP_TO throughout"
  fi
  echo
  echo "Every run, as logged (the sender's own account is read from its log when the run ended):"
  echo
  echo '```'
  for p in $PROVIDERS; do
    for s in $SENDERS; do
      key=$p,$s
      [[ -n ${c_del[$key]+x} ]] || continue
      echo "$(provider_label "$p") $s: injection: ${c_inj[$key]:-—}; ${c_acc[$key]:-}"
      [[ -n ${c_note[$key]:-} ]] && echo "  notes: ${c_note[$key]%; }"
    done
  done
  echo '```'
  echo
  echo "Commands (per run; the simulator's configuration is per provider, below):"
  echo
  echo '```'
  echo "${SIM_CMD:-$SLUICE_BIN sim --config SIM.toml}"
  echo "${INJ_CMD:-(no run)}"
  echo '```'
  echo
  echo "The simulator's configuration for the last provider measured (the others differ only in"
  echo "connection_limit and the schedule):"
  echo
  echo '```toml'
  last=$(find "$WORK/sim" -name '*.toml' -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -1 | cut -d' ' -f2-)
  [[ -n $last ]] && grep -v '^$' "$last"
  echo '```'
  echo
  echo "The senders, each a fresh instance per run (empty queue), from 127.0.0.1:"
  echo
  echo "- oracle: \`sluice serve\` with [shaping.domain.\"$DOMAIN\"] connection_limit = N, adaptive = false"
  echo "  (for the drop provider: $DROP_TO, its limit after $DROP_AT)${SLUICE_MIN_BACKOFF:+, [queue] min_backoff = \"$SLUICE_MIN_BACKOFF\"}, the route"
  echo "- sluice: \`sluice serve\` with its defaults (adaptive shaping: slow start from 2 connections, at"
  echo "  most 32)${SLUICE_MIN_BACKOFF:+, [queue] min_backoff = \"$SLUICE_MIN_BACKOFF\"} and the route"
  echo "- postfix: a private instance, Postfix's defaults but a transport map to the simulator (the"
  echo "  same private-instance settings as relay.sh: loopback only, own queue, log to a file)"
  echo "- haraka: a private instance as in relay.sh (relay ACL 127.0.0.0/8, outbound queue on disk,"
  echo "  route in smtp_forward.ini, nodes=$HARAKA_NODES), Haraka's defaults otherwise"
  for f in oracle.toml sluice.toml postfix.txt haraka.txt; do
    [[ -f $WORK/configs/$f ]] || continue
    echo
    case $f in
      oracle.toml) echo "oracle (last provider measured):"; echo; echo '```toml' ;;
      sluice.toml) echo "sluice:"; echo; echo '```toml' ;;
      postfix.txt) echo "Postfix (\`postconf -n\`):"; echo; echo '```' ;;
      haraka.txt) echo "Haraka (files written into \`haraka -i\`'s config directory):"; echo; echo '```' ;;
    esac
    grep -v '^$' "$WORK/configs/$f"
    echo '```'
  done
  if [[ -f $WORK/configs/postfix.txt ]]; then
    echo
    pfd() { postconf -d -h "$1" 2>/dev/null || echo "?"; }
    echo "Postfix defaults that shape these figures: default_destination_concurrency_limit = $(pfd default_destination_concurrency_limit),"
    echo "initial_destination_concurrency = $(pfd initial_destination_concurrency), default_destination_concurrency_failed_cohort_limit ="
    echo "$(pfd default_destination_concurrency_failed_cohort_limit), minimal_backoff_time = $(pfd minimal_backoff_time), queue_run_delay = $(pfd queue_run_delay)."
  fi
} >"$report"

cat "$report"
log "report: $report"
log "reproduce: $repro"
