"""End-to-end tests of classification and shaping: sluice delivering to `sluice sim` providers
that limit connections per IP, block by reputation and greylist, on loopback.

What they show: sluice learns an unknown connection limit with a handful of refusals and never
charges a throttled message an attempt; the learned limit survives a restart (spool database);
a reputation deferral suspends the key and parks its messages; greylisting delays only the
message; `sluice queue sites|explain` and `sluice classify` report it all. Waits are for log
records and stats (inotify), bounded.
"""
import json
import smtplib
import subprocess
import time
import unittest

import harness
from test_sim import Sim

TIMEOUT = 30


def inject(port, count, domain, prefix="m"):
    """count messages, one recipient each, over one SMTP session; returns the queue ids."""
    ids = []
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as s:
        s.ehlo("client.test")
        for i in range(count):
            s.mail("sender@origin.test")
            s.rcpt(f"{prefix}{i}@{domain}")
            code, text = s.data(f"Message-ID: <{prefix}{i}.{domain}@origin.test>\r\n"
                                f"Subject: {i}\r\n\r\nbody {i}\r\n")
            assert code == 250, (code, text)
            ids.append(text.decode().rsplit(" ", 1)[-1])
    return ids


def sluice_cli(*args):
    return subprocess.run([harness.BIN, *args], capture_output=True, text=True, timeout=TIMEOUT)


def delivered_once(test, server, sim, provider, count, timeout=60):
    """Waits until `count` messages are delivered, each once (sluice's log and the simulator's
    Message-IDs agree); returns the Delivery records and the provider's stats."""
    deliveries = server.wait_count("Delivery", count, timeout=timeout)
    test.assertEqual(len({r["id"] for r in deliveries}), count)
    stats = sim.wait_stats(lambda s: s["providers"][provider]["unique_message_ids"] >= count,
                           f"{count} messages")["providers"][provider]
    test.assertEqual(stats["duplicate_message_ids"], 0)
    return deliveries, stats


class Held:
    """A sluice that first spools `count` messages with delivery held, then is restarted to
    deliver them all at once (a deep ready queue: the sender wants many connections)."""

    def __init__(self, routes, count, domain, **kw):
        self.held = harness.Sluice(routes=routes, **kw)
        self.held.start()
        self.ids = inject(self.held.port, count, domain)
        assert self.held.stop() == 0
        self.routes, self.kw = routes, kw
        self.server = None

    def deliver(self, **more):
        kw = dict(self.kw, **more)
        kw["queue"] = dict(kw.get("queue") or {}, hold=False)
        self.server = harness.Sluice(directory=self.held.dir, routes=self.routes, **kw)
        self.server.start()
        return self.server

    def close(self):
        if self.server:
            self.server.close()
        self.held.close()


class LearnsTheConnectionLimit(unittest.TestCase):
    def test_learns_an_unknown_limit_without_charging_attempts_and_keeps_it_after_restart(self):
        sim = Sim({"limited": {"connection_limit": 3, "tarpit": "5ms"}})
        routes = {"limited.test": {"host": "127.0.0.1", "port": sim.ports["limited"]}}
        h = Held(routes, 300, "limited.test")
        try:
            server = h.deliver()
            deliveries, stats = delivered_once(self, server, sim, "limited", 300)
            self.assertLessEqual(max(stats["peak_concurrency"].values()), 3)
            refused = stats["refused"].get("connection_limit", 0)
            self.assertGreaterEqual(refused, 1)  # it had to find the limit …
            self.assertLessEqual(refused, 5)     # … and found it without hammering

            records = server.log_records()
            # Every refusal is a throttle signal: logged, classified, never charged.
            throttled = [r for r in records if r.get("event") == "TransientFailure"]
            self.assertEqual(len(throttled), refused)
            for r in throttled:
                self.assertEqual(r["category"], "connection-limit")
                self.assertFalse(r["charged"])
                self.assertEqual(r["stage"], "banner")
            self.assertTrue(all(r["attempt"] == 1 for r in records if r.get("event") == "Delivery"))
            changes = [r for r in records if r.get("event") == "ThrottleChange"
                       and r.get("reason", "").startswith("connection-limit signal")]
            self.assertTrue(changes, "no ThrottleChange for the refusal")
            self.assertEqual(changes[0]["category"], "connection-limit")
            self.assertIn("Too many concurrent connections", changes[0]["reply"])

            # The operator's view.
            out = sluice_cli("queue", "sites", "--http", f"127.0.0.1:{server.http_port}", "--json")
            self.assertEqual(out.returncode, 0, out.stderr)
            [site] = json.loads(out.stdout)
            self.assertEqual(site["connection_limit"], 3)
            self.assertFalse(site["slow_start"])
            self.assertEqual(site["last_category"], "connection-limit")
            self.assertEqual(site["configured_connection_limit"], 32)
            table = sluice_cli("queue", "sites", "--http", f"127.0.0.1:{server.http_port}")
            self.assertIn("127.0.0.1", table.stdout)
            self.assertIn("connection-limit", table.stdout)
            self.assertEqual(server.stop(), 0)

            # Restart: the learned limit comes back from the spool database (no slow start); an
            # idle site leaves memory (forget_after) and comes back with what it learned.
            again = harness.Sluice(directory=h.held.dir, routes=routes, queue={"hold": False},
                                   shaping={"forget_after": "1s"})
            again.start()
            try:
                inject(again.port, 1, "limited.test", prefix="after")
                again.wait_records(lambda r: r.get("event") == "Delivery", "a delivery")
                sites = lambda: json.loads(sluice_cli(
                    "queue", "sites", "--http", f"127.0.0.1:{again.http_port}", "--json").stdout)
                [site] = sites()
                self.assertEqual(site["connection_limit"], 3)
                self.assertFalse(site["slow_start"])
                # Idle, it is forgotten (bounded wait: the tick runs every second) …
                deadline = time.monotonic() + TIMEOUT
                while sites() and time.monotonic() < deadline:
                    time.sleep(0.2)
                self.assertEqual(sites(), [])
                # … and the next message brings it back with its learned limit.
                inject(again.port, 1, "limited.test", prefix="later")
                again.wait_count("Delivery", 2)
                [site] = sites()
                self.assertEqual(site["connection_limit"], 3)
                self.assertFalse(site["slow_start"])
            finally:
                again.close()
        finally:
            h.close()
            sim.close()

    def test_oracle_configuration_uses_exactly_the_configured_limit(self):
        sim = Sim({"limited": {"connection_limit": 4, "tarpit": "5ms"}})
        routes = {"oracle.test": {"host": "127.0.0.1", "port": sim.ports["limited"]}}
        shaping = {"domain": {"oracle.test": {"connection_limit": 4, "adaptive": False}}}
        h = Held(routes, 200, "oracle.test", shaping=shaping)
        try:
            h.deliver()
            stats = sim.wait_stats(lambda s: s["providers"]["limited"]["unique_message_ids"] >= 200,
                                   "200 messages")["providers"]["limited"]
            self.assertEqual(stats["refused"].get("connection_limit", 0), 0)
            self.assertEqual(max(stats["peak_concurrency"].values()), 4)
        finally:
            h.close()
            sim.close()


class HeldBatch(unittest.TestCase):
    def deliver_all(self, provider, count):
        """`count` messages held, then delivered to one simulated provider; checks each arrived
        once and at its first attempt, and returns the server."""
        self.sim = Sim({"p": provider})
        self.addCleanup(self.sim.close)
        routes = {"p.test": {"host": "127.0.0.1", "port": self.sim.ports["p"]}}
        h = Held(routes, count, "p.test")
        self.addCleanup(h.close)
        server = h.deliver()
        deliveries = server.wait_count("Delivery", count, timeout=60)
        self.assertEqual(len({r["id"] for r in deliveries}), count)
        self.assertTrue(all(r["attempt"] == 1 for r in deliveries))
        self.assertEqual(self.sim.stats("p")["duplicate_message_ids"], 0)
        return server


class LearnsDeliveriesPerConnection(HeldBatch):
    def test_a_session_cap_lowers_deliveries_per_connection_without_charging(self):
        server = self.deliver_all({"max_messages_per_connection": 20, "connection_limit": 2}, 150)
        [change] = [r for r in server.log_records() if r.get("event") == "ThrottleChange"
                    and r.get("limit") == "max_deliveries"]
        self.assertEqual((change["from"], change["to"]), ("100", "20"))
        # Learned once: after it, connections close after 20 and never meet the cap again.
        self.assertLessEqual(self.sim.stats("p")["refused"].get("session_cap", 0), 2)


class LearnsTheMessageRate(HeldBatch):
    def test_a_rate_limited_receiver_gets_a_paced_steady_stream(self):
        server = self.deliver_all({"message_rate": "40/s"}, 120)
        records = server.log_records()
        changes = [r for r in records if r.get("event") == "ThrottleChange"
                   and r.get("limit") == "message_rate"]
        self.assertTrue(changes, "no message_rate change")
        self.assertEqual(changes[0]["category"], "rate-limit")
        learned = float(changes[-1]["to"].split("/")[0])
        self.assertLessEqual(learned, 40.0)
        refused = [r for r in records if r.get("event") == "TransientFailure"]
        self.assertTrue(all(r["category"] == "rate-limit" and not r["charged"] for r in refused))
        # Paced, not hammering: refusals are a small share of what was delivered.
        self.assertLess(len(refused), 60)


class Reputation(unittest.TestCase):
    def test_a_reputation_deferral_suspends_the_key_and_parks_its_messages_uncharged(self):
        sim = Sim({"blocking": {"blocked_ips": ["127.0.0.1"]}})
        routes = {"blocked.test": {"host": "127.0.0.1", "port": sim.ports["blocking"]}}
        h = Held(routes, 20, "blocked.test")
        try:
            server = h.deliver(shaping={"suspend": "1h"})
            [susp] = server.wait_records(lambda r: r.get("event") == "Suspension", "a suspension")
            self.assertEqual(susp["category"], "reputation")
            self.assertIn("[TS01]", susp["reply"])
            self.assertEqual(susp["duration"], "1h")
            # Every message is back in the scheduled queue, none charged an attempt; one
            # connection was tried, not twenty.
            qid = h.ids[-1]
            out = sluice_cli("queue", "explain", qid, "--http", f"127.0.0.1:{server.http_port}",
                             "--json")
            self.assertEqual(out.returncode, 0, out.stderr)
            msg = json.loads(out.stdout)
            self.assertEqual(msg["attempts"], 0)
            self.assertGreater(msg["next_due_ms"], susp_ms(susp) + 3_500_000)
            self.assertEqual(msg["queue"]["state"], "scheduled")
            [dom] = msg["queue"]["domains"]
            self.assertEqual(dom["domain"], "blocked.test")
            self.assertTrue(dom["suspended"])
            self.assertIn("[TS01]", dom["last_signal"])
            text = sluice_cli("queue", "explain", qid, "--http", f"127.0.0.1:{server.http_port}")
            self.assertIn("scheduled; next attempt", text.stdout)
            self.assertIn("SUSPENDED until", text.stdout)
            sites = json.loads(sluice_cli("queue", "sites", "--http",
                                          f"127.0.0.1:{server.http_port}", "--json").stdout)
            self.assertTrue(sites[0]["suspended"])
            self.assertIn("[TS01]", sites[0]["suspend_reason"])
            self.assertLessEqual(sim.stats("blocking")["connections"], 2)
            missing = sluice_cli("queue", "explain", "00000000000000AA", "--http",
                                 f"127.0.0.1:{server.http_port}")
            self.assertEqual(missing.returncode, 1)
            self.assertIn("no message", missing.stderr)
        finally:
            h.close()
            sim.close()


def susp_ms(rec):
    import datetime
    ts = datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(ts.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


class Greylisting(unittest.TestCase):
    def test_greylisting_delays_only_that_message_and_charges_nothing(self):
        sim = Sim({"grey": {"greylist": "1s"}})
        routes = {"grey.test": {"host": "127.0.0.1", "port": sim.ports["grey"]}}
        server = harness.Sluice(routes=routes, queue={"hold": False},
                                shaping={"greylist_retry": "2s"})
        server.start()
        try:
            [qid] = inject(server.port, 1, "grey.test")
            [t] = server.wait_records(lambda r: r.get("event") == "TransientFailure", "greylisted")
            self.assertEqual(t["category"], "greylist")
            self.assertFalse(t["charged"])
            [d] = server.wait_records(lambda r: r.get("event") == "Delivery", "delivered later")
            self.assertEqual(d["id"], qid)
            self.assertEqual(d["attempt"], 1)  # the greylisting cost no attempt
            # Nothing else slowed down: no signal reached the key (slow start alone moved it).
            records = server.log_records()
            self.assertFalse([r for r in records if r.get("event") == "Suspension"])
            self.assertFalse([r for r in records if r.get("event") == "ThrottleChange"
                              and r.get("category")])
        finally:
            server.close()
            sim.close()


class ClassifyCommand(unittest.TestCase):
    def test_one_reply_and_stdin_with_stages_and_json(self):
        r = sluice_cli("classify", "421 4.7.0 Too many concurrent connections from this IP",
                       "--stage", "banner")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("connection-limit soft reduce-connections"), r.stdout)
        lines = ("banner\t421-4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to "
                 "unexpected volume or user complaints\n"
                 "rcpt\t550-5.1.1 The email account that you tried to reach does not exist.\n"
                 "250 2.0.0 OK\n")
        r = subprocess.run([harness.BIN, "classify", "--json", "--provider", "yahoo"],
                           input=lines, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([o["category"] for o in out], ["reputation", "user-unknown", "delivered"])
        self.assertEqual(out[0]["action"], "suspend")
        self.assertEqual(out[1]["severity"], "hard")
        self.assertTrue(all(o["rule"] for o in out))
        # '-' is standard input; the stage prefix is optional ("unknown" too); replies without a
        # code are classified; a bad line is reported with its number, the rest still classified,
        # and the exit code says one was bad.
        lines = ("unknown\t451 4.7.652 The mail server [192.0.2.1] has exceeded the maximum "
                 "number of connections. (S3115)\n"
                 "bogus\t421 4.7.0 Try again later\n"
                 "Mailbox full\n"
                 "host mx.example.com[192.0.2.1] said: 550 5.1.1 <a@example.com>: Recipient "
                 "address rejected: User unknown (in reply to RCPT TO command)\n")
        r = subprocess.run([harness.BIN, "classify", "--json", "-"], input=lines,
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 65)
        self.assertIn("line 2: unknown stage 'bogus'", r.stderr)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([o["category"] for o in out],
                         ["connection-limit", "mailbox-full", "user-unknown"])
        self.assertEqual(out[1]["code"], 0)
        self.assertEqual(out[2]["stage"], "rcpt")

    def test_evidence_shows_what_weighed(self):
        lines = ("rcpt\t550 5.7.1 Message lacks a valid DKIM signature for the From: domain\n"
                 "banner\t421 4.7.0 Blorpt frazzle quux wibble\n")
        r = subprocess.run([harness.BIN, "classify", "--json", "--evidence", "-"], input=lines,
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        words, guess = [json.loads(l) for l in r.stdout.splitlines()]
        # An exact phrase led by far: the weights per category, and no model asked.
        self.assertEqual(words["category"], "authentication")
        self.assertEqual(words["phrase"], words["rule"])
        self.assertGreater(words["evidence"]["authentication"], words["evidence"].get("policy", 0))
        self.assertNotIn("model", words)
        # Only codes spoke: the model's guess decides, with how sure it was.
        self.assertEqual(guess["rule"], "model")
        self.assertEqual(guess["model"]["category"], guess["category"])
        self.assertTrue(0 < guess["model"]["probability"] <= 1, guess)
        r = subprocess.run([harness.BIN, "classify", "--evidence", "x"], capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--evidence requires --json", r.stderr)


if __name__ == "__main__":
    unittest.main()
