#!/usr/bin/env python3
"""Accuracy of `sluice classify` on the reply corpus (tests/corpus/README.md).

    corpus_eval.py [--bin SLUICE] [--split dev|heldout|all] [--misses] [--rules FILE]

Classifies every reply as an operator would: the reply line as found, with its stage when the
corpus knows it, without telling the provider (hints and the text must find it). Prints the
accuracy overall, by category and by provider; --misses lists what was misread.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load(split):
    rows = []
    splits = ["dev", "heldout"] if split == "all" else [split]
    for s in splits:
        d = os.path.join(HERE, "corpus", s)
        for name in sorted(os.listdir(d)):
            if not name.endswith(".jsonl"):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        row = json.loads(line)
                        row["_where"] = f"{s}/{name}:{n}"
                        rows.append(row)
    return rows


def classify(binary, rows, rules=None):
    lines = []
    for r in rows:
        reply = " ".join(r["reply"].split())
        stage = r.get("stage") or "unknown"
        lines.append(f"{stage}\t{reply}")
    cmd = [binary, "classify", "--json", "-"] + (["--rules", rules] if rules else [])
    out = subprocess.run(cmd, input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=120)
    got = [json.loads(l) for l in out.stdout.splitlines()]
    if len(got) != len(rows):
        sys.exit(f"corpus_eval: {len(rows)} replies, {len(got)} verdicts\n{out.stderr}")
    return got


def table(title, counts):
    print(f"\n{title:<22} {'n':>5} {'right':>6} {'accuracy':>9}")
    for key, (n, ok) in sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0])):
        print(f"{key or '(generic)':<22} {n:>5} {ok:>6} {100.0 * ok / n:>8.1f}%")


def evaluate(binary, split, rules=None):
    rows = load(split)
    got = classify(binary, rows, rules)
    by_cat = collections.defaultdict(lambda: [0, 0])
    by_prov = collections.defaultdict(lambda: [0, 0])
    misses = []
    for r, g in zip(rows, got):
        ok = g["category"] == r["category"]
        for d, k in ((by_cat, r["category"]), (by_prov, r.get("provider", ""))):
            d[k][0] += 1
            d[k][1] += ok
        if not ok:
            misses.append((r, g))
    total = len(rows)
    right = total - len(misses)
    return {"total": total, "right": right, "by_category": dict(by_cat),
            "by_provider": dict(by_prov), "misses": misses}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("SLUICE_BIN", "build/release/sluice"))
    ap.add_argument("--split", default="heldout", choices=["dev", "heldout", "all"])
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--rules", help="a rules file instead of the built-in ones")
    a = ap.parse_args()
    res = evaluate(a.bin, a.split, a.rules)
    print(f"{a.split}: {res['right']}/{res['total']} right, "
          f"{100.0 * res['right'] / res['total']:.1f}%")
    table("category", res["by_category"])
    table("provider", res["by_provider"])
    if a.misses:
        print()
        for r, g in res["misses"]:
            print(f"{r['category']:>16} <- {g['category']:<16} {g['rule']:<32} {r['reply'][:150]}")


if __name__ == "__main__":
    main()
