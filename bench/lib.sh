# bench/lib.sh: what the loopback benchmarks share (sourced by injection.sh and relay.sh, never
# run). Installing Postfix, starting smtp-sink, a private Postfix instance and `sluice serve`
# on loopback ports, bounded waits, the fsync probe, cleanup by PID, and report helpers.
#
# The sourcing script sets, before calling anything here:
#   BENCH_NAME     prefix of log lines and of the generated configurations' comments
#   SINK_PORT POSTFIX_PORT SLUICE_PORT SLUICE_HTTP_PORT PORT_WAIT SLUICE_BIN
#   (HARAKA_PORT and optionally HARAKA_NODES before start_haraka_instance; ROOT, the checkout)
# and WORK (via make_work) before starting anything. Every wait here is bounded.
# shellcheck shell=bash disable=SC2153,SC2034  # settings come from, results go to, the sourcing script

log() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $TARGETS " == *" $1 "* ]]; }

# repro_command SCRIPT VAR...: the command that reproduces this run: the script plus every
# listed setting that was given in the environment.
repro_command() {
  local script=$1 v out=""
  shift
  for v in "$@"; do
    if [[ -n "${!v:-}" ]]; then out+="$v=$(printf '%q' "${!v}") "; fi
  done
  echo "${out}$script"
}

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
WORK=""; SINK_PID=""; SLUICE_PID=""; POSTFIX_DIR=""; POSTFIX_LOG=""; HARAKA_PID=""
EXTRA_PIDS=""     # helper processes a script started in the background (TERMed on exit)

# make_work PREFIX: the temporary directory for configs, queues and logs; installs the trap
# that stops everything started here (by PID) and deletes it.
make_work() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  chmod 755 "$WORK"     # the postfix user must reach its queue under here
  trap cleanup EXIT INT TERM
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  for p in $EXTRA_PIDS; do
    kill -TERM "$p" 2>/dev/null || true
  done
  if [[ -n $SLUICE_PID ]] && kill -0 "$SLUICE_PID" 2>/dev/null; then
    kill -TERM "$SLUICE_PID" 2>/dev/null || true
    wait_gone "$SLUICE_PID" 15 || kill -KILL "$SLUICE_PID" 2>/dev/null || true
  fi
  stop_haraka
  stop_postfix_instance
  if [[ -n $SINK_PID ]]; then
    kill -TERM "$SINK_PID" 2>/dev/null || true
    wait_gone "$SINK_PID" 5 || kill -KILL "$SINK_PID" 2>/dev/null || true
  fi
  for p in $EXTRA_PIDS; do
    wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null || true
  done
  if [[ -n $WORK && -d $WORK ]]; then
    if [[ ${KEEP_WORK:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}

# stop_postfix_instance: stops the private Postfix instance, if one was started (bounded).
stop_postfix_instance() {
  if [[ -n $POSTFIX_DIR && -f $POSTFIX_DIR/main.cf ]]; then
    local master
    master=$(tr -d ' ' <"$WORK/postfix/queue/pid/master.pid" 2>/dev/null || true)
    postfix -c "$POSTFIX_DIR" stop >/dev/null 2>&1 || true
    if [[ -n $master ]] && ! wait_gone "$master" 15; then
      postfix -c "$POSTFIX_DIR" abort >/dev/null 2>&1 || true
      wait_gone "$master" 5 || true
    fi
  fi
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

# ------------------------------------------------------------------------------------ smtp-sink
SINK_OUT=""
start_sink() {
  port_open "$SINK_PORT" && die "port $SINK_PORT is in use (set SINK_PORT)"
  # -c: running counters (sessions, messages) on stdout, read back to confirm what it received.
  # It writes (and flushes) one record "sess=S quit=Q mesg=M\r" at every "." it receives and at
  # every session end or QUIT, so mesg counts messages as they arrive, connections kept or not.
  SINK_OUT=$WORK/sink.out
  smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 >"$SINK_OUT" 2>"$WORK/sink.err" &
  SINK_PID=$!
  wait_port "$SINK_PORT" "$PORT_WAIT" "$SINK_PID" || die "smtp-sink did not listen: $(cat "$WORK/sink.err")"
}

# Messages smtp-sink has received so far (its last "mesg=N" counter). Reads only the end of the
# file: a record being written may be cut short, which can only make the count lower, not higher.
sink_messages() {
  tail -c 4096 "$SINK_OUT" | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true
}

# sink_watch_start BASELINE TARGET DEADLINE IDLE FLAG: starts, in the background, a watcher of
# smtp-sink's counter file from its current end (where the count is BASELINE). It stops when
# the count reaches TARGET, at the epoch second DEADLINE, or when the count has not grown for
# IDLE seconds after the file FLAG appeared (the sender is done: nothing more is coming).
# It polls every 2 ms and reads only new bytes, so it costs next to nothing beside the
# benchmark; returns once the watcher is reading (bounded). sink_watch_result waits for it and
# sets WATCH_COUNT (the last count seen), WATCH_TIME (when it was first seen, epoch seconds)
# and WATCH_REASON (complete|idle|deadline).
WATCH_PID=""
sink_watch_start() {
  local prog=$WORK/sink_watch.py offset
  if [[ ! -f $prog ]]; then
    cat >"$prog" <<'PY'
import os, re, sys, time
path, offset, count, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
deadline, idle, flag, out = float(sys.argv[5]), float(sys.argv[6]), sys.argv[7], sys.argv[8]
fd = os.open(path, os.O_RDONLY)
open(out + ".ready", "w").close()
pos, buf = offset, b""
last = time.time()          # when the count last grew (or the watch began)
flag_seen = None
reason = "deadline"
while True:
    size = os.fstat(fd).st_size
    now = time.time()
    if size > pos:
        data = os.pread(fd, size - pos, pos)
        pos += len(data)
        buf += data
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r"))   # complete records only
        if cut >= 0:
            done, buf = buf[:cut + 1], buf[cut + 1:]
            found = re.findall(rb"mesg=(\d+)", done[-200:])
            if found and int(found[-1]) > count:
                count, last = int(found[-1]), now
        if count >= target:
            reason = "complete"
            break
    if now >= deadline:
        break
    if flag_seen is None and os.path.exists(flag):
        flag_seen = now
    if flag_seen is not None and now - max(last, flag_seen) >= idle:
        reason = "idle"
        break
    time.sleep(0.002)
with open(out + ".tmp", "w") as f:
    f.write("%d %.6f %s\n" % (count, last, reason))
os.rename(out + ".tmp", out)
PY
  fi
  offset=$(stat -c %s "$SINK_OUT")
  rm -f "$WORK/watch.out" "$WORK/watch.out.ready"
  local budget
  budget=$(awk -v d="$3" -v now="$(date +%s)" 'BEGIN { printf "%d", d - now + 5 }')
  timeout "$budget" python3 "$prog" "$SINK_OUT" "$offset" "$1" "$2" "$3" "$4" "$5" "$WORK/watch.out" &
  WATCH_PID=$!
  EXTRA_PIDS="$WATCH_PID"
  local i
  for ((i = 0; i < 100; i++)); do    # ready: python is up and reading (at most 5 s)
    [[ -e $WORK/watch.out.ready ]] && return 0
    kill -0 "$WATCH_PID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

WATCH_COUNT=0; WATCH_TIME=0; WATCH_REASON=""
sink_watch_result() {
  wait "$WATCH_PID" 2>/dev/null || true
  EXTRA_PIDS=""
  WATCH_COUNT=0; WATCH_TIME=0; WATCH_REASON="watcher failed"
  if [[ -s $WORK/watch.out ]]; then read -r WATCH_COUNT WATCH_TIME WATCH_REASON <"$WORK/watch.out"; fi
}

# sink_settle: waits (at most 10 s) until smtp-sink's counter has not moved for 0.3 s, so that
# nothing from a previous run is still arriving when the next one starts.
sink_settle() {
  local i prev="" now stable=0
  for ((i = 0; i < 100; i++)); do
    now=$(sink_messages)
    if [[ $now == "$prev" ]]; then
      stable=$((stable + 1))
      ((stable >= 3)) && return 0
    else
      stable=0
    fi
    prev=$now
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------------------------ Postfix
# start_postfix_instance MAIN_CF_TAIL MASTER_CF_SERVICES: a private Postfix instance under
# $WORK/postfix listening on 127.0.0.1:POSTFIX_PORT. main.cf is the private, loopback-only base
# below plus MAIN_CF_TAIL (what the instance does with mail); master.cf is the base services
# plus MASTER_CF_SERVICES (its delivery transports).
start_postfix_instance() {
  port_open "$POSTFIX_PORT" && die "port $POSTFIX_PORT is in use (set POSTFIX_PORT)"
  # Config (root's), queue and data (the postfix user's) side by side, never one inside another:
  # postfix-script checks that everything under the config directory is root's.
  local base=$WORK/postfix
  POSTFIX_DIR=$base/etc
  mkdir -p "$POSTFIX_DIR" "$base/queue" "$base/data"
  chown postfix "$base/data"
  # Only what makes a private, loopback-only instance. Nothing here changes how Postfix writes
  # its queue files (fsync before "250" stays as shipped).
  cat >"$POSTFIX_DIR/main.cf" <<EOF
# sluice bench/$BENCH_NAME.sh: private Postfix instance, deleted after the run
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
$1
alias_maps =
alias_database =
EOF
  # Upstream defaults (no chroot: the queue is not set up as a chroot jail); only the services
  # this instance uses. No local transport: nothing is delivered on this machine.
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
$2
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
  POSTFIX_LOG=$base/maillog
  postfix -c "$POSTFIX_DIR" start >"$WORK/postfix-start.out" 2>&1 \
    || die "postfix -c $POSTFIX_DIR start failed: $(cat "$WORK/postfix-start.out"; tail -5 "$POSTFIX_LOG")"
  wait_port "$POSTFIX_PORT" "$PORT_WAIT" || die "postfix did not listen on $POSTFIX_PORT"
}

# count_matches FILE REGEX: lines of FILE matching REGEX (0 if none or no file yet).
count_matches() {
  local n
  n=$(grep -cE "$2" "$1" 2>/dev/null || true)
  echo "${n:-0}"
}

# sluice's event log (doc/log.md): records of the given event(s), e.g. 'TransientFailure|Bounce'.
# Written by a background thread, a little after the event.
sluice_events() { count_matches "$WORK/sluice/log/sluice.jsonl" "\"event\": *\"($1)\""; }

# Count of maillog lines matching a regex.
postfix_log_count() { count_matches "$POSTFIX_LOG" "$1"; }
postfix_queued() { postfix_log_count 'qmgr\[[0-9]+\]: [0-9A-Za-z]+: from=<'; }
postfix_removed() { postfix_log_count 'qmgr\[[0-9]+\]: [0-9A-Za-z]+: removed'; }
postfix_queue_files() {
  { find "$WORK/postfix/queue/"{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null || true; } | wc -l
}

# Waits (bounded) until Postfix has delivered or discarded all it accepted, so one run's backlog
# does not slow the next; true when the queue is empty.
postfix_drain() {
  local i
  for ((i = 0; i < 600; i++)); do
    [[ $(postfix_queue_files) == 0 ]] && return 0
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------------------------- Haraka
# Haraka 3 from the npm registry, installed once into a cache under the build directory (not
# system-wide); `haraka -i` makes a private instance directory under $WORK, whose config/ holds
# only the files written here (everything else is Haraka's shipped defaults).
HARAKA_CACHE=${HARAKA_CACHE:-$ROOT/build/bench/haraka}
HARAKA_BIN=$HARAKA_CACHE/node_modules/.bin/haraka
HARAKA_DIR=""; HARAKA_LOG=""

# install_haraka: true once $HARAKA_BIN exists (idempotent: npm runs only when it is missing).
# --ignore-scripts: nothing is compiled (modern-syslog, optional, stays unbuilt; Haraka logs to
# its stdout here, which goes to a file).
install_haraka() {
  [[ -x $HARAKA_BIN ]] && return 0
  command -v npm >/dev/null || { log "haraka: npm not found (Node.js 20+ needed)"; return 1; }
  mkdir -p "$HARAKA_CACHE"
  log "installing Haraka@3 with npm into $HARAKA_CACHE"
  if ! (cd "$HARAKA_CACHE" && timeout 600 npm install --no-audit --no-fund --ignore-scripts Haraka@3 \
        >"$HARAKA_CACHE/npm-install.log" 2>&1); then
    log "haraka: npm install failed: $(tail -3 "$HARAKA_CACHE/npm-install.log" | tr '\n' ' ')"
    return 1
  fi
  [[ -x $HARAKA_BIN ]]
}
haraka_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$HARAKA_CACHE/node_modules/Haraka/package.json" 2>/dev/null | head -1
}

# start_haraka_instance ROUTE_HOST ROUTE_PORT DOMAIN MODE: a private Haraka listening on
# 127.0.0.1:HARAKA_PORT that relays for clients on 127.0.0.0/8 (the relay plugin's ACL) and
# sends DOMAIN to ROUTE_HOST:ROUTE_PORT. MODE:
#   outbound  (default) the relay set-up of Haraka's "Configuring Outbound" guide: relayed mail
#             goes to its outbound queue (one file per message, written through an fsyncing
#             stream and renamed before the 250) and is delivered by its outbound engine, with
#             retries; the route is a [DOMAIN] section of smtp_forward.ini, read by that plugin's
#             get_mx hook (enable_outbound=false: smtp_forward does not take relayed mail itself)
#   forward   smtp_forward.ini enable_outbound=true: queue/smtp_forward forwards each message at
#             queue time and answers the client with the next hop's reply. Nothing is spooled to
#             disk, nothing is retried (a deferral by the next hop goes back to the client)
# True once it listens; otherwise false with the reason logged (its output is $HARAKA_LOG).
start_haraka_instance() {
  local host=$1 port=$2 domain=$3 mode=${4:-outbound}
  port_open "$HARAKA_PORT" && die "port $HARAKA_PORT is in use (set HARAKA_PORT)"
  HARAKA_DIR=$WORK/haraka
  HARAKA_LOG=$WORK/haraka.log
  timeout 60 "$HARAKA_BIN" -i "$HARAKA_DIR" >"$WORK/haraka-init.out" 2>&1 \
    || { log "haraka: haraka -i failed: $(tail -3 "$WORK/haraka-init.out")"; return 1; }
  local c=$HARAKA_DIR/config outbound=false
  [[ $mode == forward ]] && outbound=true
  echo "haraka.$domain" >"$c/me"
  # haraka -i's plugins file enables mail_from.is_resolvable and rcpt_to.in_host_list (inbound
  # checks; the first needs DNS): replaced by the two plugins a relay needs.
  printf '%s\n' "# sluice bench/$BENCH_NAME.sh" relay queue/smtp_forward >"$c/plugins"
  printf '%s\n' 127.0.0.0/8 >"$c/relay_acl_allow"
  printf '%s\n' "; sluice bench/$BENCH_NAME.sh: private Haraka instance, deleted after the run" \
    "listen=127.0.0.1:$HARAKA_PORT" "nodes=${HARAKA_NODES:-cpus}" >"$c/smtp.ini"
  printf '%s\n' "; sluice bench/$BENCH_NAME.sh" "host=$host" "port=$port" \
    "enable_outbound=$outbound" "" "[$domain]" "host=$host" "port=$port" >"$c/smtp_forward.ini"
  "$HARAKA_BIN" -c "$HARAKA_DIR" </dev/null >"$HARAKA_LOG" 2>&1 &
  HARAKA_PID=$!
  if ! wait_port "$HARAKA_PORT" $((PORT_WAIT * 3)) "$HARAKA_PID"; then
    log "haraka: did not listen on $HARAKA_PORT: $(grep -E 'ERROR|CRIT|Error' "$HARAKA_LOG" | tail -3 | tr '\n' ' ')"
    return 1
  fi
}

# stop_haraka: TERM to the master (it stops its workers), bounded; then KILL to the master and
# to any worker it had started (its children, by PID).
stop_haraka() {
  [[ -n $HARAKA_PID ]] || return 0
  local kids k
  kids=$(pgrep -P "$HARAKA_PID" 2>/dev/null || true)
  kill -TERM "$HARAKA_PID" 2>/dev/null || true
  wait_gone "$HARAKA_PID" 15 || kill -KILL "$HARAKA_PID" 2>/dev/null || true
  for k in $kids; do
    wait_gone "$k" 5 || kill -KILL "$k" 2>/dev/null || true
  done
  HARAKA_PID=""
}

# Haraka's log (level info, as `haraka -i` writes log.ini): one "queue code=OK" line per message
# answered 250, one "[outbound] delivered" line per delivery by the outbound engine.
haraka_log_count() { count_matches "$HARAKA_LOG" "$1"; }
haraka_accepted() { haraka_log_count '\] queue code=OK '; }
haraka_delivered() { haraka_log_count '\[outbound\] +delivered '; }
haraka_not_sent() { haraka_log_count '\[outbound\].*(deferred|[Bb]ounce|temp_fail|Temp fail)'; }
haraka_queue_files() { { find "$HARAKA_DIR/queue" -type f 2>/dev/null || true; } | wc -l; }
haraka_drain() {   # bounded: true once the outbound queue directory is empty
  local i
  for ((i = 0; i < 600; i++)); do
    [[ $(haraka_queue_files) == 0 ]] && return 0
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------------------------- sluice
# write_sluice_toml SMTP_LINES [MORE_SECTIONS]: etc/sluice.toml's settings with bench ports and
# a spool and log in the temporary directory; SMTP_LINES go into [smtp], MORE_SECTIONS at the end.
# SLUICE_POOL="127.0.0.2 127.0.0.3": sluice sends through egress sources on these addresses, all
# in pool "default" with weight 1 (doc/config.md, "Egress"), to measure the cost of pools.
SLUICE_TOML=""
SLUICE_POOL=${SLUICE_POOL:-}
write_sluice_toml() {
  SLUICE_TOML=$WORK/sluice/sluice.toml
  mkdir -p "$WORK/sluice"
  cat >"$SLUICE_TOML" <<EOF
# sluice bench/$BENCH_NAME.sh: etc/sluice.toml with loopback bench ports and a temporary spool
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
  if [[ -n ${2:-} ]]; then printf '\n%s\n' "$2" >>"$SLUICE_TOML"; fi
  local n=0 address
  for address in $SLUICE_POOL; do
    n=$((n + 1))
    printf '\n[source.s%d]\naddress = "%s"\n' "$n" "$address" >>"$SLUICE_TOML"
  done
}

# sluice_check_config: true when `sluice serve --check-config` accepts $SLUICE_TOML (bounded);
# its complaint is left in $WORK/sluice/check-config.out.
sluice_check_config() {
  timeout 10 "$SLUICE_BIN" serve --config "$SLUICE_TOML" --check-config \
    >"$WORK/sluice/check-config.out" 2>&1
}

SLUICE_STATE="not measured"
# sluice_usable: false (SLUICE_STATE says why, logged) when there is no binary to run.
sluice_usable() {
  if [[ ! -x $SLUICE_BIN ]]; then
    SLUICE_STATE="not measured (no binary at $SLUICE_BIN)"; log "sluice: $SLUICE_STATE"; return 1
  fi
  port_open "$SLUICE_PORT" && die "port $SLUICE_PORT is in use (set SLUICE_PORT)"
  mkdir -p "$WORK/sluice"
}

# launch_sluice: `sluice serve` on $SLUICE_TOML; true once its listener answers. Otherwise
# false, with SLUICE_STATE saying why (logged).
launch_sluice() {
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

# -------------------------------------------------------------------------- measuring, report
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

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ratio() {   # ratio A B: A/B to two decimals, or — when either is missing or zero
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
    if (a == "" || b == "" || a == "—" || b == "—" || b + 0 == 0) print "—"; else printf "%.2f", a / b }'
}

# Report lines describing the machine and the disk under $WORK.
machine_line() {
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
}
filesystem() { df -PT "$WORK" | awk 'NR == 2 { print $2 " on " $1 }'; }
sluice_version() {
  if [[ -x $SLUICE_BIN ]]; then "$SLUICE_BIN" --version 2>/dev/null || echo "unknown"; else echo "not available"; fi
}
