#!/usr/bin/env python3
"""Accuracy of `sluice classify` on the reply corpus (tests/corpus/README.md).

    corpus_eval.py [--bin SLUICE] [--split dev|heldout|all|probes] [--misses] [--rules FILE]
    corpus_eval.py --agreement [--bin SLUICE]

Classifies every reply as an operator would: the reply line as found, with its stage when the
corpus knows it, without telling the provider (hints and the text must find it). Prints the
accuracy overall, by category and by provider; --misses lists what was misread. `probes` are
invented paraphrases (tests/corpus/probes/), a robustness check apart from the real replies.

--agreement compares the corpus's labels of the held-out replies with a second labeller's, made
blind to the first labels and to the classifier (tests/corpus/agreement.jsonl), and reads the
classifier on the replies both agree on: how much of the gap to 100% is the labels' own.
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


def agreement(binary):
    """Labeller agreement and the classifier on agreed replies (tests/corpus/agreement.jsonl)."""
    words = lambda reply: " ".join(reply.split())
    corpus = {words(r["reply"]): r for r in load("heldout")}
    with open(os.path.join(HERE, "corpus", "agreement.jsonl"), encoding="utf-8") as f:
        second = [json.loads(l) for l in f if l.strip()]
    pairs = [(corpus[words(s["reply"])], s) for s in second if words(s["reply"]) in corpus]
    got = classify(binary, [r for r, _ in pairs])
    agree = [(r, s, g) for (r, s), g in zip(pairs, got) if r["category"] == s["second"]]
    sure = [(r, s) for r, s in pairs if s["sure"]]
    pct = lambda a, b: f"{a}/{b} = {100.0 * a / max(1, b):.1f}%"
    print(f"labellers agree on {pct(len(agree), len(pairs))} held-out replies; on the second "
          f"labeller's sure ones {pct(sum(r['category'] == s['second'] for r, s in sure), len(sure))}")
    right = sum(g["category"] == r["category"] for r, _, g in agree)
    print(f"the classifier on the replies both agree on: {pct(right, len(agree))}")
    by_cat = collections.defaultdict(lambda: [0, 0])
    for r, _, g in agree:
        by_cat[r["category"]][0] += 1
        by_cat[r["category"]][1] += g["category"] == r["category"]
    table("category (agreed)", dict(by_cat))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("SLUICE_BIN", "build/release/sluice"))
    ap.add_argument("--split", default="heldout", choices=["dev", "heldout", "all", "probes"])
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--rules", help="a rules file instead of the built-in ones")
    ap.add_argument("--agreement", action="store_true")
    a = ap.parse_args()
    if a.agreement:
        agreement(a.bin)
        return
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
