"""End-to-end tests of `sluice sim`, the receiver simulator: each behaviour a real receiving
service shows, observed from a real SMTP client (smtplib and raw sockets), and the statistics
it reports (JSON file and GET /stats).

Waits are for events (a reply, the stats file being replaced — inotify) and bounded.
"""
import ctypes
import json
import os
import select
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness

TIMEOUT = 10
_libc = ctypes.CDLL(None, use_errno=True)
IN_MOVED_TO = 0x80


class Sim:
    """A simulator with the given providers ({name: {key: value}}), each on a free port."""

    def __init__(self, providers, **top):
        self.tmp = tempfile.TemporaryDirectory(prefix="sluice-sim-")
        self.stats_file = os.path.join(self.tmp.name, "stats.json")
        # A free port may be taken by another test between the pick and the listen: pick again.
        for attempt in range(5):
            line = self._start(providers, top)
            if b"SimStarted" in line or b"Address already in use" not in line or attempt == 4:
                break
            self.proc.wait(timeout=TIMEOUT)
            self.proc.stderr.close()
        assert b"SimStarted" in line, line

    def _start(self, providers, top):
        """Writes the config with fresh ports, starts the simulator; returns its first line."""
        self.http_port = harness.free_port()
        self.ports = {}
        text = f'stats_file = {json.dumps(self.stats_file)}\nhttp_listen = "127.0.0.1:{self.http_port}"\n'
        text += "".join(f"{k} = {harness.toml_value(v)}\n" for k, v in top.items())
        for name, keys in providers.items():
            # "host" (optional): listen there on the shared "port" (MX hosts share a port).
            host = keys.get("host", "127.0.0.1")
            self.ports[name] = keys.get("port") or harness.free_port()
            text += f'\n[[provider]]\nname = "{name}"\nlisten = "{host}:{self.ports[name]}"\n'
            for k, v in keys.items():
                if k in ("host", "port"):
                    continue
                if k == "limit_schedule":
                    items = ", ".join("{ " + ", ".join(f"{a} = {harness.toml_value(b)}" for a, b in e.items()) + " }" for e in v)
                    text += f"limit_schedule = [ {items} ]\n"
                else:
                    text += f"{k} = {harness.toml_value(v)}\n"
        self.config = os.path.join(self.tmp.name, "sim.toml")
        with open(self.config, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen([harness.BIN, "sim", "--config", self.config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self.proc.stderr.readline()

    def stats(self, provider=None):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/stats", timeout=TIMEOUT) as r:
            s = json.load(r)
        return s["providers"][provider] if provider else s

    def wait_stats(self, pred, what):
        """Waits until the stats file (rewritten every second) satisfies pred."""
        fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        _libc.inotify_add_watch(fd, self.tmp.name.encode(), IN_MOVED_TO)
        try:
            deadline = time.monotonic() + TIMEOUT
            while True:
                if os.path.exists(self.stats_file):
                    with open(self.stats_file) as f:
                        s = json.load(f)
                    if pred(s):
                        return s
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise AssertionError(f"stats never showed {what}")
                os.read(fd, 4096)
        finally:
            os.close(fd)

    def connect(self, name):
        return Raw(self.ports[name])

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=TIMEOUT)
        self.tmp.cleanup()


class Raw:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.banner = self.reply()

    def reply(self):
        while True:
            lines = self.buf.split(b"\r\n")
            for i, l in enumerate(lines[:-1]):
                if len(l) >= 4 and l[3:4] == b" ":
                    self.buf = b"\r\n".join(lines[i + 1:])
                    return l.decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def send(port, sender="a@sender.test", rcpt="b@sim.test", msgid=None, timeout=TIMEOUT):
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
        s.ehlo("client.test")
        code, text = s.mail(sender)
        if code != 250:
            return code, text.decode()
        code, text = s.rcpt(rcpt)
        if code != 250:
            return code, text.decode()
        body = (f"Message-ID: {msgid}\r\n" if msgid else "") + "Subject: s\r\n\r\nx\r\n"
        code, text = s.data(body)
        return code, text.decode()


class SessionCap(unittest.TestCase):
    def test_the_next_mail_after_the_cap_gets_421_and_the_connection_closes(self):
        sim = Sim({"capped": {"max_messages_per_connection": 2}})
        try:
            c = sim.connect("capped")
            c.cmd("EHLO client.test")
            for i in range(2):
                self.assertTrue(c.cmd("MAIL FROM:<a@sender.test>").startswith("250"))
                self.assertTrue(c.cmd("RCPT TO:<b@sim.test>").startswith("250"))
                self.assertTrue(c.cmd("DATA").startswith("354"))
                self.assertTrue(c.cmd(f"Subject: {i}\r\n\r\nx\r\n.").startswith("250"))
            reply = c.cmd("MAIL FROM:<a@sender.test>")
            self.assertEqual(reply,
                             "421 4.7.0 Max message per connection exceeded, closing transmission channel")
            self.assertIsNone(c.reply())  # closed
            c.close()
            s = sim.stats("capped")
            self.assertEqual(s["accepted_messages"], 2)
            self.assertEqual(s["refused"]["session_cap"], 1)
        finally:
            sim.close()


class Limits(unittest.TestCase):
    def setUp(self):
        self.sim = Sim({
            "banner2": {"connection_limit": 2},
            "ehlo1": {"connection_limit": 1, "limit_stage": "ehlo"},
            "mail1": {"connection_limit": 1, "limit_stage": "mail"},
            "dynamic": {"connection_limit": 3, "penalty_threshold": 2, "penalty_step": 1, "penalty_decay": "1h"},
            "rates": {"message_rate": "2/m", "connection_rate": "3/m"},
            "schedule": {"connection_limit": 3, "limit_schedule": [{"at": "1s", "connection_limit": 1}]},
        })
        self.addCleanup(self.sim.close)

    def test_concurrent_connection_limit_at_the_banner(self):
        a, b = self.sim.connect("banner2"), self.sim.connect("banner2")
        c = self.sim.connect("banner2")
        self.assertTrue(a.banner.startswith("220") and b.banner.startswith("220"))
        self.assertEqual(c.banner, "421 4.7.0 Too many concurrent connections from this IP, try again later")
        self.assertIsNone(c.reply())  # closed
        s = self.sim.stats("banner2")
        self.assertEqual(s["refused"]["connection_limit"], 1)
        self.assertEqual(s["peak_concurrency"]["127.0.0.1"], 2)
        a.close()
        b.close()

    def test_limit_said_after_ehlo_or_at_mail(self):
        a = self.sim.connect("ehlo1")
        b = self.sim.connect("ehlo1")
        self.assertTrue(b.banner.startswith("220"))
        self.assertTrue(b.cmd("EHLO x.test").startswith("421 4.7.0"))
        c, d = self.sim.connect("mail1"), self.sim.connect("mail1")
        self.assertTrue(d.cmd("EHLO x.test").startswith("250"))
        self.assertTrue(d.cmd("MAIL FROM:<a@b.test>").startswith("421 4.7.0"))
        for x in (a, b, c, d):
            x.close()

    def test_dynamic_limit_tightens_for_an_ip_that_keeps_exceeding_it(self):
        held = [self.sim.connect("dynamic") for _ in range(3)]
        for _ in range(2):  # two refusals: two penalty points, the threshold: limit 3 -> 2
            r = self.sim.connect("dynamic")
            self.assertTrue(r.banner.startswith("421"))
            r.close()
        for h in held:
            h.cmd("QUIT")
            h.close()
        ok = [self.sim.connect("dynamic") for _ in range(2)]
        self.assertTrue(all(o.banner.startswith("220") for o in ok))
        third = self.sim.connect("dynamic")
        self.assertTrue(third.banner.startswith("421"), "the penalised IP now gets 2, not 3")
        for x in ok + [third]:
            x.close()

    def test_message_and_connection_rates(self):
        self.assertEqual(send(self.sim.ports["rates"])[0], 250)
        self.assertEqual(send(self.sim.ports["rates"])[0], 250)
        code, text = send(self.sim.ports["rates"])
        self.assertEqual((code, text[:5]), (451, "4.7.1"))
        c = self.sim.connect("rates")  # the fourth connection this minute
        self.assertTrue(c.banner.startswith("421 4.7.0 Connection rate"), c.banner)
        s = self.sim.stats("rates")
        self.assertEqual((s["refused"]["rate_limit"], s["refused"]["connection_rate"]), (1, 1))

    def test_limit_that_drops_mid_run(self):
        a = self.sim.connect("schedule")
        b = self.sim.connect("schedule")
        self.assertTrue(b.banner.startswith("220"))
        b.close()
        self.sim.wait_stats(lambda s: s["providers"]["schedule"]["connection_limit_now"] == 1, "the drop")
        c = self.sim.connect("schedule")
        self.assertTrue(c.banner.startswith("421"))
        a.close()
        c.close()


class Behaviours(unittest.TestCase):
    def setUp(self):
        self.sim = Sim({
            "blocked": {"blocked_ips": ["127.0.0.1"]},
            "grey": {"greylist": "1ms"},
            "tarpit": {"tarpit": "200ms"},
            "flaky": {"transient_failure_permille": 1000},
            "bounces": {"hard_bounce_pattern": "^bounce", "mailbox_full_pattern": "^full", "hang_pattern": "^hang"},
        })
        self.addCleanup(self.sim.close)

    def test_reputation_block(self):
        c = self.sim.connect("blocked")
        self.assertIn("[TS01]", c.banner)
        self.assertTrue(c.banner.startswith("421 4.7.0"))

    def test_greylisting_delays_only_the_first_attempt(self):
        code, text = send(self.sim.ports["grey"])
        self.assertEqual((code, text[:5]), (451, "4.7.1"))
        for _ in range(50):  # the next attempt after the greylist time passes
            code, _ = send(self.sim.ports["grey"])
            if code == 250:
                break
        self.assertEqual(code, 250)

    def test_tarpit_delays_every_reply(self):
        t0 = time.monotonic()
        c = self.sim.connect("tarpit")
        c.cmd("EHLO x.test")
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)  # two replies, 200 ms each at least

    def test_random_transient_failures(self):
        self.assertEqual(send(self.sim.ports["flaky"])[0], 451)
        self.assertEqual(self.sim.stats("flaky")["refused"]["transient"], 1)

    def test_hard_bounce_mailbox_full_and_hang(self):
        self.assertEqual(send(self.sim.ports["bounces"], rcpt="bounce1@x.test")[0], 550)
        self.assertEqual(send(self.sim.ports["bounces"], rcpt="full1@x.test")[0], 452)
        with self.assertRaises(smtplib.SMTPServerDisconnected):  # smtplib reports the timeout so
            send(self.sim.ports["bounces"], rcpt="hang1@x.test", timeout=1)


class Statistics(unittest.TestCase):
    def test_counts_messages_ids_and_timeline(self):
        sim = Sim({"a": {}, "b": {}})
        try:
            for _ in range(2):
                self.assertEqual(send(sim.ports["a"], msgid="<same@x>")[0], 250)
            self.assertEqual(send(sim.ports["a"], msgid="<other@x>")[0], 250)
            self.assertEqual(send(sim.ports["b"])[0], 250)
            s = sim.stats()
            a = s["providers"]["a"]
            self.assertEqual((a["accepted_messages"], a["accepted_recipients"]), (3, 3))
            self.assertEqual((a["unique_message_ids"], a["duplicate_message_ids"]), (2, 1))
            self.assertEqual(s["providers"]["b"]["accepted_messages"], 1)
            f = sim.wait_stats(lambda st: len(st["providers"]["a"]["timeline"]) >= 1, "a timeline entry")
            self.assertEqual(sum(t["accepted"] for t in f["providers"]["a"]["timeline"]) +
                             0, f["providers"]["a"]["accepted_messages"])
        finally:
            sim.close()

    def test_bad_config_names_the_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[[provider]]\nname = "x"\nlisten = "127.0.0.1:2600"\nconnection_limt = 3\n')
        try:
            r = harness.run("sim", "--config", f.name)
            self.assertEqual(r.returncode, 78)
            self.assertIn(":4:", r.stderr)
            self.assertIn("connection_limt: unknown key", r.stderr)
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
