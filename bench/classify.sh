#!/usr/bin/env bash
# Reply classification cost: how many failure replies a second `sluice classify` reads, over
# every reply of the corpus (tests/corpus, as pasted) repeated ROUNDS times, for each binary
# given, in the same run (machines here are noisy: compare within one run). Every binary must
# give the same verdicts; the script says so or fails.
#
# Usage: bench/classify.sh [BINARY...]     default build/release/sluice
#   e.g. bench/classify.sh /tmp/sluice-before build/release/sluice
# Environment: ROUNDS (5), RESULTS_DIR (bench/results).
# Output: bench/results/classify-<date>.md, also printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${ROUNDS:-5}
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(build/release/sluice)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/replies.tsv" <<'PY'
import glob, json, sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for path in sorted(glob.glob("tests/corpus/*/*.jsonl")):
        if path.endswith("agreement.jsonl"):
            continue
        for line in open(path, encoding="utf-8"):
            if line.strip():
                r = json.loads(line)
                out.write(f"{r.get('stage') or 'unknown'}\t{' '.join(r['reply'].split())}\n")
PY
n=$(wc -l < "$work/replies.tsv")
for _ in $(seq "$rounds"); do cat "$work/replies.tsv"; done > "$work/rounds.tsv"
total=$((n * rounds))
report="${RESULTS_DIR:-bench/results}/classify-$(date -u +%Y-%m-%d).md"
{
  echo "# Reply classification cost, $(date -u '+%Y-%m-%d %H:%M') UTC"
  echo
  echo "Command: \`bench/classify.sh ${bins[*]}\` (ROUNDS=$rounds): $n corpus replies x $rounds = $total."
  echo
  echo "| binary | seconds | replies/s | µs/reply |"
  echo "| --- | ---: | ---: | ---: |"
  first=""
  for b in "${bins[@]}"; do
    "$b" classify --json - < "$work/replies.tsv" > "$work/verdicts" 2>/dev/null || true
    if [ -z "$first" ]; then first=$b; cp "$work/verdicts" "$work/first"; fi
    cmp -s "$work/first" "$work/verdicts" || { echo "verdicts of $b differ from $first" >&2; exit 1; }
    start=$(date +%s.%N)
    "$b" classify - < "$work/rounds.tsv" > /dev/null 2>&1 || true
    end=$(date +%s.%N)
    python3 -c "s=$end-$start; print(f'| \`$b\` | {s:.2f} | {$total/s:,.0f} | {1e6*s/$total:.0f} |')"
  done
  echo
  echo "Every binary gave the same verdicts on the $n replies."
} | tee "$report"
