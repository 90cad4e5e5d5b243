"""End-to-end test of /metrics: after a known load against `sluice sim` (deliveries, hard
bounces, deferrals, two tenants), the exposition passes `promtool check metrics` (Debian's
prometheus package) and, parsed with the Prometheus client library's own parser (Debian's
python3-prometheus-client, run by Debian's python3), its counters match the load exactly.
"""
import json
import smtplib
import subprocess
import unittest
import urllib.request

import harness
from test_sim import Sim

PARSE = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([family.name, family.type, s.name, s.labels, s.value])
print(json.dumps(out))
"""


def scrape(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


class Metrics(unittest.TestCase):
    def test_counters_match_a_known_load_and_the_exposition_is_valid(self):
        sim = Sim({"inbox": {"hard_bounce_pattern": "^bad", "mailbox_full_pattern": "^full"}})
        routes = {"inbox.test": {"host": "127.0.0.1", "port": sim.ports["inbox"]}}
        server = harness.Sluice(queue={"hold": False}, routes=routes,
                                extra='[tenant.acme]\npool = "default"\n')
        server.start()
        try:
            load = [("good", 10, "acme"), ("bad", 4, None), ("full", 3, None)]
            with smtplib.SMTP("127.0.0.1", server.port, timeout=harness.TIMEOUT) as s:
                for prefix, n, tenant in load:
                    for i in range(n):
                        tag = f"X-Tenant: {tenant}\r\n" if tenant else ""
                        # The null sender: no DSN adds messages of its own to the counts.
                        s.sendmail("", [f"{prefix}{i}@inbox.test"], f"{tag}Subject: {i}\r\n\r\nx\r\n")
            server.wait_records(None, "every result", select_all=lambda recs: recs if (
                sum(r.get("event") == "Delivery" for r in recs) >= 10
                and sum(r.get("event") == "Bounce" for r in recs) >= 4
                and sum(r.get("event") == "TransientFailure" for r in recs) >= 3) else [])
            ctype, text = scrape(server)
            self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)

            check = subprocess.run(["promtool", "check", "metrics"], input=text,
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr + text)

            parsed = subprocess.run(["/usr/bin/python3", "-c", PARSE], input=text,
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(parsed.returncode, 0, parsed.stderr)
            samples = json.loads(parsed.stdout)

            def value(name, **labels):
                found = [v for _, _, n, l, v in samples
                         if n == name and all(l.get(k) == w for k, w in labels.items())]
                return sum(found) if found else None

            self.assertEqual(value("sluice_messages_received_total", tenant="acme"), 10)
            self.assertEqual(value("sluice_messages_received_total", tenant=""), 7)
            self.assertEqual(value("sluice_recipients_delivered_total", tenant="acme",
                                   source="default"), 10)
            self.assertEqual(value("sluice_recipients_delivered_total"), 10)
            self.assertEqual(value("sluice_recipients_bounced_total", category="user-unknown",
                                   tenant=""), 4)
            self.assertEqual(value("sluice_recipients_deferred_total", category="mailbox-full"), 3)
            self.assertEqual(value("sluice_recipients_deferred_total"), 3)
            self.assertEqual(value("sluice_delivery_latency_seconds_count"), 10)
            self.assertGreaterEqual(value("sluice_spool_sync_duration_seconds_count"), 1)
            # The deferred messages wait for their retry; the lane's gauges are there.
            self.assertEqual(value("sluice_queue_messages", state="scheduled"), 3)
            self.assertEqual(value("sluice_queue_messages", state="in_flight"), 0)
            self.assertIsNotNone(value("sluice_connection_limit", source="default"))
            self.assertEqual(value("sluice_connection_limit_configured", source="default"), 32)
            types = {name: t for name, t, *_ in samples}
            self.assertEqual(types["sluice_recipients_delivered"], "counter")
            self.assertEqual(types["sluice_spool_sync_duration_seconds"], "histogram")
            self.assertEqual(types["sluice_connections_open"], "gauge")
            stats = sim.stats("inbox")
            self.assertEqual(stats["accepted_messages"], 10)
        finally:
            server.close()
            sim.close()


if __name__ == "__main__":
    unittest.main()
