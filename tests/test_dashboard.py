"""End-to-end test of the live dashboard in a real browser: Debian's chromium driven by
playwright-core (dashboard/node_modules) through tests/dashboard_browser.mjs.

sluice (with an API token) delivers a load injected over the HTTP API to `sluice sim`: one
receiver allowing 3 connections per IP, one that blocks sluice's IP (a reputation suspension).
What it shows: the page loads, its charts draw, its figures move while the load runs, and once
the server is quiet every figure equals the same figure summed from /metrics (parsed by the
Prometheus client library) — totals, queue sizes, connections, each lane's connection limit;
the receiver's suspension and an operator's suspension are listed with their reasons, and the
latest replies of the blocking provider are shown. A screenshot is kept
($SLUICE_ARTIFACTS/dashboard.png, default build/release/artifacts/). Waits are bounded.
"""
import json
import os
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness
from test_metrics import PARSE
from test_sim import Sim

TOKEN = "dash-secret-token"
LOAD = 1200
ARTIFACTS = os.environ.get("SLUICE_ARTIFACTS", os.path.join(harness.SRC, "build/release/artifacts"))


def api(server, path, body=None, method=None):
    req = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}",
                                 data=None if body is None else json.dumps(body).encode(),
                                 method=method, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=harness.TIMEOUT) as r:
        data = r.read().decode()
    return data if path == "/metrics" else json.loads(data)


def metrics(server):
    """[(name, labels, value)] as the Prometheus client library parses /metrics."""
    text = api(server, "/metrics")
    out = subprocess.run(["/usr/bin/python3", "-c", PARSE], input=text, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [(name, labels, value) for _, _, name, labels, value in json.loads(out.stdout)]


def total(samples, name, **where):
    return sum(v for n, labels, v in samples
               if n == name and all(labels.get(k) == w for k, w in where.items()))


class Browser:
    """tests/dashboard_browser.mjs: one JSON command per line, one JSON answer per line."""

    def __init__(self):
        self.proc = subprocess.Popen(["node", os.path.join(harness.SRC, "tests/dashboard_browser.mjs")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the browser driver stopped"
        answer = json.loads(line)
        assert "error" not in answer, answer
        return answer

    def close(self):
        try:
            self(cmd="close")
        except (AssertionError, BrokenPipeError):
            pass
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class Dashboard(unittest.TestCase):
    def test_live_figures_match_metrics_in_a_real_browser(self):
        sim = Sim({
            "limited": {"connection_limit": 3, "tarpit": "10ms"},
            "blocked": {"blocked_ips": ["127.0.0.1"],
                        "block_reply": "421 4.7.0 [TS01] Messages from this IP temporarily "
                                       "deferred due to unexpected volume or user complaints"},
        })
        routes = {"limited.test": {"host": "127.0.0.1", "port": sim.ports["limited"]},
                  "blocked.test": {"host": "127.0.0.1", "port": sim.ports["blocked"]}}
        server = harness.Sluice(queue={"hold": False}, routes=routes,
                                shaping={"default": {"idle_timeout": "1s"}},
                                http={"api_token": TOKEN})
        server.start()
        browser = None
        try:
            # The page's files need no token (they hold no data); the data does.
            with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/dashboard/", timeout=10) as r:
                self.assertIn("text/html", r.headers["Content-Type"])
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=10)
            self.assertEqual(e.exception.code, 401)

            def load():  # injection over HTTP, 50 recipients a request
                for start in range(0, LOAD, 50):
                    api(server, "/api/inject/v1", {
                        "envelope_sender": "",
                        "content": "Subject: dashboard\r\n\r\nhello\r\n",
                        "recipients": [{"email": f"u{i}@limited.test"} for i in range(start, start + 50)]})
                api(server, "/api/inject/v1", {"envelope_sender": "", "content": "Subject: b\r\n\r\nx\r\n",
                                                "recipients": [{"email": "u@blocked.test"}]})
            loader = threading.Thread(target=load)
            loader.start()

            browser = Browser()
            browser(cmd="open", url=f"http://127.0.0.1:{server.http_port}/dashboard/#token={TOKEN}")
            first = browser(cmd="figures", after_polls=1)
            later = browser(cmd="figures", after_polls=2)
            loader.join(timeout=harness.TIMEOUT)
            self.assertEqual(first["status"], "live", first)
            self.assertEqual(first["errors"], [])
            self.assertEqual(later["charts"], 3)  # throughput, deferrals, queue
            # Live: the figures move while the load runs.
            self.assertGreater(later["figures"]["received"] + later["figures"]["delivered"],
                               first["figures"]["received"] + first["figures"]["delivered"])

            server.wait_count("Delivery", LOAD, timeout=120)
            server.wait_records(lambda r: r.get("event") == "Suspension", "the suspension")
            api(server, "/api/admin/suspend/v1", {"domain": "later.test", "reason": "maintenance window",
                                                  "duration": "1h"}, method="POST")
            # Quiet: the idle connections have closed; two equal scrapes bracket the page's read.
            deadline = time.monotonic() + 30
            while total(metrics(server), "sluice_connections_open") and time.monotonic() < deadline:
                time.sleep(0.2)
            before = metrics(server)
            seen = browser(cmd="figures", after_polls=2)
            after = metrics(server)
            self.assertEqual(sorted(map(str, before)), sorted(map(str, after)), "not quiet yet")

            figures = seen["figures"]
            expected = {
                "received": total(after, "sluice_messages_received_total"),
                "delivered": total(after, "sluice_recipients_delivered_total"),
                "deferred": total(after, "sluice_recipients_deferred_total"),
                "deferred_connection_limit": total(after, "sluice_recipients_deferred_total",
                                                   category="connection-limit"),
                "bounced": total(after, "sluice_recipients_bounced_total"),
                "queue_scheduled": total(after, "sluice_queue_messages", state="scheduled"),
                "queue_in_flight": total(after, "sluice_queue_messages", state="in_flight"),
                "queue_cadence": total(after, "sluice_queue_messages", state="cadence"),
                "connections_open": total(after, "sluice_connections_open"),
            }
            self.assertEqual(figures, expected)
            self.assertEqual(figures["delivered"], LOAD)
            self.assertEqual(figures["received"], LOAD + 1)  # injection spools one per recipient
            self.assertEqual(figures["queue_scheduled"] + figures["queue_in_flight"], 1)  # blocked's
            # Each lane's limit in force, as the gauge has it.
            limits = {(l["source"], l["site"]): v for n, l, v in after
                      if n == "sluice_connection_limit"}
            self.assertEqual(len(seen["lanes"]), len(limits))
            for lane in seen["lanes"]:
                self.assertEqual(lane["connection_limit"], limits[(lane["source"], lane["site"])], lane)
            limited = [l for l in seen["lanes"] if str(sim.ports["limited"]) in l["site"]]
            self.assertEqual([l["connection_limit"] for l in limited], [3])
            # The receiver's suspension and the operator's, each with its reason.
            self.assertTrue(any("[TS01]" in s for s in seen["suspensions"]), seen["suspensions"])
            self.assertTrue(any("maintenance window" in s and "later.test" in s
                                for s in seen["suspensions"]), seen["suspensions"])
            # The latest replies of the provider that refused.
            replies = {p["provider"]: p["replies"] for p in seen["replies"]}
            blocked = [p for p in replies if str(sim.ports["blocked"]) in p]
            self.assertEqual(len(blocked), 1, replies)
            self.assertTrue(any("[TS01]" in r and "reputation" in r for r in replies[blocked[0]]))

            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "dashboard.png")
            browser(cmd="screenshot", path=shot)
            self.assertGreater(os.path.getsize(shot), 20_000)
            self.assertEqual(seen["errors"], [])
        finally:
            if browser:
                browser.close()
            server.close()
            sim.close()


if __name__ == "__main__":
    unittest.main()
