#!/usr/bin/env python3
"""Injection with DKIM signing on and off, side by side (issue #14): three sluice servers in the
same run — no signing, RSA-2048 (rsa-sha256), Ed25519 (ed25519-sha256) — each accepting the
same load, delivery held ([queue] hold = true: the way in, where signing happens, once per
message before the spool's synced write). Clients are Python processes each keeping its
connection: SMTP (one message per transaction) and HTTP injection (100 recipients per request,
one signed message per recipient). 4 KiB bodies, relaxed/relaxed. Rounds interleave the three
servers so that machine noise hits them alike; the table shows medians and signed/unsigned.

    bench/dkim_signing.py [--messages 3000] [--concurrency 1 10] [--repeat 3]
    QUICK=1 bench/dkim_signing.py          # 500 messages, one round

Writes bench/results/dkim-signing-<date>.md (RESULTS_DIR to change) and prints it.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("SLUICE_BIN", os.path.join(ROOT, "build", "release", "sluice"))
import harness  # noqa: E402
import http_injection  # noqa: E402

http_injection.BODY = "From: Bench <bench@sign.test>\r\n" + http_injection.BODY

TARGETS = ("plain", "rsa", "ed25519")


def key(directory, algorithm):
    path = os.path.join(directory, algorithm + ".pem")
    args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if algorithm == "rsa" \
        else ["-algorithm", "ed25519"]
    subprocess.run(["openssl", "genpkey", *args, "-out", path], check=True, capture_output=True)
    return path


def main():
    quick = os.environ.get("QUICK") == "1"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=500 if quick else 3000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--repeat", type=int, default=1 if quick else 3)
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="sluice-dkim-bench-")
    servers = {}
    try:
        for t in TARGETS:
            extra = "" if t == "plain" else \
                f'[dkim."sign.test"]\nselector = "b1"\nkey = "{key(tmp.name, t)}"\n'
            servers[t] = harness.Sluice(smtp={"max_connections_per_ip": 200}, extra=extra)
            servers[t].start()
        rows = []
        for clients in a.concurrency:
            samples = {(t, p): [] for t in TARGETS for p in ("smtp", "http100")}
            for r in range(a.repeat):
                for path in ("smtp", "http100"):
                    for t in TARGETS:
                        samples[(t, path)].append(http_injection.run(
                            path, servers[t], a.messages, clients, f"{t}{path}{clients}r{r}"))
            rows.append((clients, {k: statistics.median(v) for k, v in samples.items()}))
    finally:
        for s in servers.values():
            s.close()
    cmd = " ".join(["bench/dkim_signing.py", "--messages", str(a.messages), "--concurrency",
                    *map(str, a.concurrency), "--repeat", str(a.repeat)])
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# Injection with DKIM signing on and off (same run)", "",
        f"{now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {a.messages} messages of 4 KiB per "
        f"run, median of {a.repeat}, relaxed/relaxed. Reproduce: `{cmd}`", "",
        "| path | clients | unsigned msg/s | RSA-2048 msg/s | RSA/unsigned | Ed25519 msg/s | Ed25519/unsigned |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in ("smtp", "http100"):
        for clients, f in rows:
            p, rsa, ed = f[("plain", path)], f[("rsa", path)], f[("ed25519", path)]
            lines.append(f"| {'SMTP' if path == 'smtp' else 'HTTP, 100 rcpts/request'} | {clients} | "
                         f"{p:.0f} | {rsa:.0f} | {rsa / p:.2f} | {ed:.0f} | {ed / p:.2f} |")
    http_injection.write_results("dkim-signing", lines, now, quick)


if __name__ == "__main__":
    main()
