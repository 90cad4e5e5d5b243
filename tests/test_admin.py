"""End-to-end tests of the operator's actions through the admin API (KumoMTA's shape):
a suspension holds a domain's mail (uncharged) and its cancellation releases it at once; a
bounce refuses matching mail for good, what waits in the scheduled queue included; a site
selector applies once the domain is resolved; a source's suspension moves its traffic to the
pool's other source; a rebind sends a tenant's mail through another pool; a limit override
caps a source's connections at once and its cancellation restores the configured limit; the
queue summary groups what waits; bad requests get clear 4xx answers.
"""
import json
import smtplib
import unittest
import urllib.error
import urllib.request

import harness
from receiver import Receiver
from test_shaping import inject, sluice_cli
from test_sim import Sim


def call(server, method, what, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{server.http_port}/api/admin/{what}/v1",
                                 data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=harness.TIMEOUT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def send(server, rcpts):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=harness.TIMEOUT) as s:
        for r in rcpts:
            s.sendmail("", [r], f"Subject: {r}\r\n\r\nx\r\n")  # null sender: no DSN traffic


class AdminActions(unittest.TestCase):
    def setUp(self):
        # c.test refuses for now: its messages wait in the scheduled queue (5 min backoff).
        self.rx = Receiver(rcpt_replies={r"@c\.test": "451 4.3.0 try later"}).start()
        routes = {d: {"host": "127.0.0.1", "port": self.rx.port} for d in ("a.test", "b.test", "c.test")}
        self.server = harness.Sluice(queue={"hold": False}, routes=routes)
        self.server.start()

    def tearDown(self):
        self.server.close()
        self.rx.stop()

    def test_a_suspension_holds_a_domain_and_its_cancellation_releases_it(self):
        status, body = call(self.server, "POST", "suspend",
                            {"domain": "A.test", "reason": "maintenance", "duration": "1h"})
        self.assertEqual(status, 200, body)
        rule = body["id"]
        send(self.server, ["x1@a.test", "x2@a.test", "y1@b.test"])
        self.server.wait_records(lambda r: r.get("event") == "Delivery"
                                 and r["recipient"] == "y1@b.test", "b.test delivered")
        held = self.server.wait_records(lambda r: r.get("event") == "TransientFailure"
                                        and r["rule"] == "admin-suspend", "a.test held",
                                        select_all=lambda recs: [
                                            r for r in recs if r.get("rule") == "admin-suspend"]
                                        if sum(r.get("rule") == "admin-suspend" for r in recs) >= 2
                                        else [])
        self.assertTrue(all(not r["charged"] for r in held))
        self.assertIn("maintenance", held[0]["reply"])
        status, listed = call(self.server, "GET", "suspend")
        self.assertEqual(status, 200)
        [r] = listed
        self.assertEqual((r["id"], r["domain"], r["reason"], r["affected"]),
                         (rule, "a.test", "maintenance", 2))
        self.assertFalse([t for t in self.rx.transactions if "x1@a.test" in t.accepted])
        status, body = call(self.server, "DELETE", "suspend", {"id": rule})
        self.assertEqual((status, body["released"]), (200, 2), body)
        self.server.wait_records(None, "a.test delivered", select_all=lambda recs: [
            r for r in recs if r.get("event") == "Delivery" and r["recipient"].endswith("@a.test")]
            if sum(r.get("event") == "Delivery" and r["recipient"].endswith("@a.test")
                   for r in recs) >= 2 else [])
        self.assertEqual(call(self.server, "GET", "suspend")[1], [])
        actions = self.server.log_records("AdminAction")
        self.assertEqual([a["action"] for a in actions], ["suspend", "cancel suspend"])

    def test_a_bounce_takes_what_waits_in_the_scheduled_queue(self):
        send(self.server, ["z1@c.test", "z2@c.test", "y2@b.test"])
        self.server.wait_records(None, "c.test deferred", select_all=lambda recs: [
            r for r in recs if r.get("event") == "TransientFailure"]
            if sum(r.get("event") == "TransientFailure" for r in recs) >= 2 else [])
        status, body = call(self.server, "POST", "bounce", {"domain": "c.test", "reason": "bad list"})
        self.assertEqual((status, body["total_bounced"]), (200, 2), body)
        bounces = self.server.wait_records(None, "the bounces", select_all=lambda recs: [
            r for r in recs if r.get("event") == "Bounce"]
            if sum(r.get("event") == "Bounce" for r in recs) >= 2 else [])
        self.assertEqual(sorted(r["recipient"] for r in bounces), ["z1@c.test", "z2@c.test"])
        self.assertTrue(all(r["rule"] == "admin-bounce" and "bad list" in r["reply"] for r in bounces))
        # New mail for c.test during the bounce's duration is refused too; b.test is not touched.
        send(self.server, ["z3@c.test"])
        self.server.wait_records(lambda r: r.get("event") == "Bounce" and r["recipient"] == "z3@c.test",
                                 "the new bounce")
        self.assertEqual([r["domain"] for r in call(self.server, "GET", "bounce")[1]], ["c.test"])

    def test_the_command_line_adds_lists_and_cancels(self):
        http = ["--http", f"127.0.0.1:{self.server.http_port}"]
        out = sluice_cli("queue", "suspend", *http, "--tenant", "acme", "--reason", "paused by ops",
                         "--duration", "2h")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("suspend 1: 0 recipients taken now", out.stdout)
        out = sluice_cli("queue", "suspend", *http)
        self.assertIn("paused by ops", out.stdout)
        self.assertIn("acme", out.stdout)
        out = sluice_cli("queue", "suspend", *http, "--json")
        [rule] = json.loads(out.stdout)
        self.assertEqual((rule["tenant"], rule["reason"]), ("acme", "paused by ops"))
        out = sluice_cli("queue", "suspend", *http, "--cancel", "1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("suspend 1 cancelled", out.stdout)
        out = sluice_cli("queue", "suspend", *http, "--cancel", "1")
        self.assertEqual(out.returncode, 1)
        self.assertIn("no suspend 1", out.stderr)
        out = sluice_cli("queue", "bounce", *http, "--domain", "a.test")  # no reason
        self.assertEqual(out.returncode, 1)
        self.assertIn("422", out.stderr)

    def test_bad_requests(self):
        self.assertEqual(call(self.server, "POST", "suspend", {"domain": "a.test"})[0], 422)  # no reason
        self.assertEqual(call(self.server, "POST", "suspend", {"reason": "x"})[0], 422)  # no selector
        self.assertEqual(call(self.server, "POST", "suspend",
                              {"domain": "a.test", "reason": "x", "duration": "soon"})[0], 422)
        self.assertEqual(call(self.server, "DELETE", "suspend", {"id": 999})[0], 404)
        self.assertEqual(call(self.server, "PUT", "bounce", {})[0], 405)
        req = urllib.request.Request(f"http://127.0.0.1:{self.server.http_port}/api/admin/bounce/v1",
                                     data=b"{nope", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=harness.TIMEOUT)
        self.assertEqual(e.exception.code, 400)


SOURCES = """
[source.ip1]
address = "127.0.0.2"

[source.ip2]
address = "127.0.0.3"

[pool.default]
sources = ["ip1", "ip2"]

[pool.other]
sources = ["ip2"]

[tenant.acme]
pool = "default"
"""


def tagged(server, count, domain, tenant):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=harness.TIMEOUT) as s:
        for i in range(count):
            s.sendmail("", [f"{tenant}{i}@{domain}"], f"X-Tenant: {tenant}\r\nSubject: {i}\r\n\r\nx\r\n")


def summary(server, by):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/api/v1/queue?by={by}",
                                timeout=harness.TIMEOUT) as r:
        return json.loads(r.read())


class LaneActions(unittest.TestCase):
    """Two sources (127.0.0.2, 127.0.0.3) against a simulator that counts per client IP."""

    def setUp(self):
        self.sim = Sim({"wide": {"connection_limit": 50, "tarpit": "20ms"}})
        routes = {"wide.test": {"host": "127.0.0.1", "port": self.sim.ports["wide"]},
                  "held.test": {"host": "127.0.0.1", "port": self.sim.ports["wide"]}}
        self.server = harness.Sluice(queue={"hold": False}, routes=routes, extra=SOURCES)
        self.server.start()

    def tearDown(self):
        self.server.close()
        self.sim.close()

    def deliveries(self, n):
        return self.server.wait_count("Delivery", n, timeout=60)

    def test_a_limit_override_caps_a_source_at_once_and_its_cancellation_restores_it(self):
        status, body = call(self.server, "POST", "limit",
                            {"source": "ip1", "connection_limit": 2, "reason": "provider asked"})
        self.assertEqual(status, 200, body)
        inject(self.server.port, 300, "wide.test")
        self.deliveries(300)
        peaks = self.sim.stats("wide")["peak_concurrency"]
        self.assertLessEqual(peaks["127.0.0.2"], 2, peaks)
        self.assertGreater(peaks["127.0.0.3"], 2, peaks)  # the other source is not capped
        lanes = {l["source"]: l for l in json.loads(sluice_cli(
            "queue", "sites", "--http", f"127.0.0.1:{self.server.http_port}", "--json").stdout)}
        self.assertEqual(lanes["ip1"]["configured_connection_limit"], 2)
        self.assertEqual(lanes["ip2"]["configured_connection_limit"], 32)
        [listed] = call(self.server, "GET", "limit")[1]
        self.assertEqual((listed["source"], listed["connection_limit"], listed["reason"]),
                         ("ip1", 2, "provider asked"))
        out = sluice_cli("queue", "limit", "--http", f"127.0.0.1:{self.server.http_port}",
                         "--cancel", str(body["id"]))
        self.assertEqual(out.returncode, 0, out.stderr)
        lanes = {l["source"]: l for l in json.loads(sluice_cli(
            "queue", "sites", "--http", f"127.0.0.1:{self.server.http_port}", "--json").stdout)}
        self.assertEqual(lanes["ip1"]["configured_connection_limit"], 32)
        self.assertEqual(call(self.server, "GET", "limit")[1], [])
        self.server.wait_records(lambda r: r.get("action") == "cancel limit", "the cancellation")
        actions = [a["action"] for a in self.server.log_records("AdminAction")]
        self.assertEqual(actions, ["limit", "cancel limit"])

    def test_a_suspended_source_moves_its_traffic_and_a_rebind_moves_a_tenant(self):
        http = ["--http", f"127.0.0.1:{self.server.http_port}"]
        out = sluice_cli("queue", "suspend", *http, "--source", "ip1", "--reason", "rotating")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("lanes changed now", out.stdout)
        inject(self.server.port, 40, "wide.test")
        first = self.deliveries(40)
        self.assertEqual({r["source"] for r in first}, {"ip2"})
        self.assertTrue(all(r["attempt"] == 1 for r in first))
        self.assertEqual(sluice_cli("queue", "suspend", *http, "--cancel", "1").returncode, 0)
        # A rebind: acme's mail through the pool "other" (ip2 only) while it lasts.
        status, body = call(self.server, "POST", "rebind",
                            {"tenant": "acme", "pool": "other", "reason": "noisy tenant"})
        self.assertEqual(status, 200, body)
        tagged(self.server, 30, "wide.test", "acme")
        acme = [r for r in self.deliveries(70) if r["tenant"] == "acme"]
        self.assertEqual(len(acme), 30)
        self.assertEqual({(r["source"], r["pool"]) for r in acme}, {("ip2", "other")})
        out = sluice_cli("queue", "rebind", *http)
        self.assertIn("tenant=acme → pool other", out.stdout)

    def test_a_site_selector_and_the_queue_summary(self):
        inject(self.server.port, 5, "held.test")
        self.deliveries(5)
        [site] = {r["site"] for r in self.server.log_records("Delivery")}
        status, body = call(self.server, "POST", "suspend", {"site": site, "reason": "site work"})
        self.assertEqual(status, 200, body)
        tagged(self.server, 6, "held.test", "acme")
        held = self.server.wait_records(None, "held by site", select_all=lambda recs: [
            r for r in recs if r.get("rule") == "admin-suspend"]
            if sum(r.get("rule") == "admin-suspend" for r in recs) >= 6 else [])
        self.assertTrue(all(not r["charged"] and "site work" in r["reply"] for r in held))
        by_domain = summary(self.server, "domain")
        [group] = [g for g in by_domain["groups"] if g["name"] == "held.test"]
        self.assertEqual((group["messages"], group["recipients"], group["scheduled"]), (6, 6, 6))
        by_tenant = {g["name"]: g for g in summary(self.server, "tenant")["groups"]}
        self.assertEqual(by_tenant["acme"]["messages"], 6)
        by_site = {g["name"]: g for g in summary(self.server, "site")["groups"]}
        self.assertEqual(by_site[site]["recipients"], 6)
        out = sluice_cli("queue", "summary", "--http", f"127.0.0.1:{self.server.http_port}",
                         "--by", "domain")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"held\.test\s+6\s+6\s+0\s+6")

    def test_bad_lane_requests(self):
        cases = [
            ("limit", {"source": "ip1", "connection_limit": 2}),            # no reason
            ("limit", {"connection_limit": 2, "reason": "x"}),              # no selector
            ("limit", {"source": "ip9", "connection_limit": 2, "reason": "x"}),  # no such source
            ("limit", {"source": "ip1", "reason": "x"}),                    # no limit
            ("limit", {"source": "ip1", "connection_limit": 0, "reason": "x"}),
            ("limit", {"source": "ip1", "message_rate": "fast", "reason": "x"}),
            ("rebind", {"tenant": "acme", "pool": "nowhere", "reason": "x"}),
            ("rebind", {"tenant": "acme", "reason": "x"}),                  # no pool
            ("suspend", {"source": "ip1", "domain": "a.test", "reason": "x"}),
            ("bounce", {"source": "ip1", "reason": "x"}),
        ]
        for what, body in cases:
            status, answer = call(self.server, "POST", what, body)
            self.assertEqual(status, 422, (what, body, answer))
            self.assertIn("error", answer)
        with self.assertRaises(urllib.error.HTTPError) as e:
            summary(self.server, "colour")
        self.assertEqual(e.exception.code, 400)
        self.assertEqual(call(self.server, "DELETE", "limit", {"id": 7})[0], 404)


if __name__ == "__main__":
    unittest.main()
