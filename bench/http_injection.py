#!/usr/bin/env python3
"""Injection over HTTP (POST /api/inject/v1) against injection over SMTP, same sluice, same run.

Messages per second *accepted* (the 250 after DATA, or the HTTP 200: both only after the spool's
synced write), delivery held ([queue] hold = true: this measures the way in). The clients are
Python processes (one per concurrent client, no GIL between them), each keeping its connection:
smtplib for SMTP, http.client for HTTP. Three paths per concurrency: SMTP, one message per
transaction; HTTP, one recipient per request; HTTP, 100 recipients per request (one message per
recipient all the same: KumoMTA's batch shape). 4 KiB bodies. The same Python client overhead is
on both sides, so the ratio is what sluice's two ways in cost; absolute figures are lower than
bench/injection.sh's (smtp-source is C).

    bench/http_injection.py [--messages 5000] [--concurrency 1 10] [--repeat 3]
    QUICK=1 bench/http_injection.py          # 500 messages, one run

Writes bench/results/http-injection-<date>.md (RESULTS_DIR to change) and prints it.
"""
import argparse
import datetime
import http.client
import json
import multiprocessing
import os
import smtplib
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("SLUICE_BIN", os.path.join(ROOT, "build", "release", "sluice"))
import harness  # noqa: E402

BODY = "Subject: bench\r\n\r\n" + ("x" * 78 + "\r\n") * 51  # ~4 KiB


def smtp_client(args):
    port, count, tag = args
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        for i in range(count):
            s.sendmail("bench@origin.test", [f"{tag}{i}@bench.invalid"], BODY)
    return count


def http_client(args):
    port, count, per_request, tag = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    sent = 0
    while sent < count:
        n = min(per_request, count - sent)
        req = {"envelope_sender": "bench@origin.test", "content": BODY,
               "recipients": [{"email": f"{tag}{sent + k}@bench.invalid"} for k in range(n)]}
        conn.request("POST", "/api/inject/v1", json.dumps(req),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        answer = json.loads(r.read())
        if r.status != 200 or answer["success_count"] != n:
            raise RuntimeError(f"HTTP {r.status}: {answer}")
        sent += n
    conn.close()
    return sent


def run(path, server, total, clients, tag):
    per = total // clients
    if path == "smtp":
        jobs = [(server.port, per, f"{tag}c{c}m") for c in range(clients)]
        fn = smtp_client
    else:
        batch = 1 if path == "http" else 100
        jobs = [(server.http_port, per, batch, f"{tag}c{c}m") for c in range(clients)]
        fn = http_client
    with multiprocessing.Pool(clients) as pool:
        start = time.monotonic()
        done = sum(pool.map(fn, jobs))
        elapsed = time.monotonic() - start
    return done / elapsed


def main():
    quick = os.environ.get("QUICK") == "1"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=500 if quick else 5000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--repeat", type=int, default=1 if quick else 3)
    a = ap.parse_args()
    server = harness.Sluice(smtp={"max_connections_per_ip": 200})
    server.start()
    rows = []
    try:
        for clients in a.concurrency:
            figures = {}
            for path in ("smtp", "http", "http100"):
                rates = [run(path, server, a.messages, clients, f"{path}{clients}r{r}")
                         for r in range(a.repeat)]
                figures[path] = statistics.median(rates)
            rows.append((clients, figures))
    finally:
        server.close()
    cmd = " ".join(["bench/http_injection.py", "--messages", str(a.messages), "--concurrency",
                    *map(str, a.concurrency), "--repeat", str(a.repeat)])
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# Injection over HTTP against SMTP (same sluice, same run)", "",
        f"{now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {a.messages} messages of 4 KiB per "
        f"run, median of {a.repeat}. Reproduce: `{cmd}`", "",
        "| clients | SMTP msg/s | HTTP msg/s (1 rcpt/request) | HTTP/SMTP | HTTP msg/s (100 rcpts/request) | HTTP100/SMTP |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clients, f in rows:
        lines.append(f"| {clients} | {f['smtp']:.0f} | {f['http']:.0f} | {f['http'] / f['smtp']:.2f} | "
                     f"{f['http100']:.0f} | {f['http100'] / f['smtp']:.2f} |")
    write_results("http-injection", lines, now, quick)


def write_results(kind, lines, now, quick):
    """Prints the report and writes it to $RESULTS_DIR (bench/results)/KIND-DATE[-quick].md."""
    text = "\n".join(lines) + "\n"
    print(text)
    out_dir = os.environ.get("RESULTS_DIR", os.path.join(ROOT, "bench", "results"))
    os.makedirs(out_dir, exist_ok=True)
    name = f"{kind}-{now:%Y-%m-%d}{'-quick' if quick else ''}.md"
    with open(os.path.join(out_dir, name), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
