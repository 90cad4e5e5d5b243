#!/usr/bin/env bash
# Memory per queued message (issue #4): resident memory of `sluice serve` holding COUNT deferred
# messages (default 1,000,000) against the same server on an empty spool, both measured after
# start-up recovery. Deferred messages keep only (due time, id) in memory; metadata and bodies
# stay in the spool (RocksDB) until they are due.
#
# Usage: bench/queue_memory.sh            (COUNT=1000000; needs ~1 GB of disk, a few minutes)
#        COUNT=100000 bench/queue_memory.sh   (quick)
# Writes bench/results/queue-memory-<date>.md and prints it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${COUNT:-1000000}
SLUICE_BIN=${SLUICE_BIN:-$ROOT/build/release/sluice}
FILL=${FILL:-$ROOT/build/release/bench/spool_fill}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts sluice on spool $1, waits (bounded) for Started, prints "rss_kb recovered recovery_ms".
measure() {
  local spool=$1 p
  p=$(port)
  cat >"$work/sluice.toml" <<TOML
[smtp]
listen = "127.0.0.1:$p"
[spool]
path = "$spool"
min_free_space = 0
[log]
path = "$work/log.jsonl"
[dns]
providers = ""
TOML
  "$SLUICE_BIN" serve --config "$work/sluice.toml" 2>"$work/stderr" &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q '"event":"Started"' "$work/stderr" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
    sleep 0.5
  done
  grep -q '"event":"Started"' "$work/stderr" || { echo "sluice did not start" >&2; exit 1; }
  local rss rec ms
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  rec=$(grep -o '"event":"Recovered","messages":[0-9]*' "$work/stderr" | grep -o '[0-9]*$')
  ms=$(grep -o '"event":"Recovered","messages":[0-9]*,"ms":[0-9]*' "$work/stderr" | grep -o '[0-9]*$')
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  echo "$rss $rec $ms"
}

echo "queue_memory: filling a spool with $COUNT deferred messages" >&2
fill_start=$(date +%s)
"$FILL" "$work/full" "$COUNT" >&2
fill_s=$(( $(date +%s) - fill_start ))
mkdir -p "$work/empty"
read -r rss_empty _ _ < <(measure "$work/empty")
read -r rss_full recovered rec_ms < <(measure "$work/full")
disk=$(du -sm "$work/full" | cut -f1)
per=$(( (rss_full - rss_empty) * 1024 / COUNT ))

mkdir -p "$RESULTS_DIR"
out="$RESULTS_DIR/queue-memory-$(date -u +%Y-%m-%d).md"
cat >"$out" <<MD
# Memory per queued message

- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)
- sluice: $("$SLUICE_BIN" --version)
- command: COUNT=$COUNT bench/queue_memory.sh (spool filled by build/release/bench/spool_fill in ${fill_s}s; ${disk} MB on disk)

| state | messages | resident memory | recovery |
| --- | ---: | ---: | ---: |
| empty spool | 0 | $(( rss_empty / 1024 )) MiB | — |
| deferred queue | $recovered | $(( rss_full / 1024 )) MiB | ${rec_ms} ms |

**$per bytes of resident memory per deferred message** ((RSS full − RSS empty) / messages;
goal: under 300). In memory a deferred message is one (due time, id) heap entry of 16 bytes;
the rest is RocksDB's own caches touched by recovery.
MD
cat "$out"
