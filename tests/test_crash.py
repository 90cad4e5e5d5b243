"""Crash safety: every message that got a 250 survives kill -9, exactly once.

Several clients inject over loopback while the server is killed with SIGKILL at a random point
(after a random number of acknowledgements), then restarted on the same spool, several times.
Each message carries a unique recipient token; at the end the spool must hold every
acknowledged token exactly once. Messages that were in flight when the server died may or may
not be there (the client never got a 250, so it would retry): they are not counted.

With delivery (DeliveringCrashTest): every message goes to two sites, one that takes mail at once
and one that never finishes DATA (slow), while the server is killed ten times. No acknowledged
message is lost, and a recipient at the fast site that answered 250 gets the message again only
if the spool, read right after a kill, still lists it: its 250 came in but was not yet recorded.
Each recipient's outcome is written as its own job reports, not when the whole message (held up
by the slow site) settles.

The seed is printed; SLUICE_CRASH_SEED reproduces a run. Bounded: ROUNDS kills, at most
MAX_PER_ROUND acknowledgements per round, every wait bounded by harness.TIMEOUT.
"""
import collections
import os
import random
import smtplib
import threading
import time
import unittest

import dnsfixture
import harness
from receiver import Receiver

ROUNDS = 4
CLIENTS = 8
MAX_PER_ROUND = 400


class Loader:
    """CLIENTS threads sending until told to stop or the server dies under them. Each message
    goes to TOKEN@d for every domain d of `domains`."""

    def __init__(self, port, round_no, domains=("example.test",)):
        self.port = port
        self.round = round_no
        self.domains = domains
        self.acked = {}  # token -> spool id from "queued as"
        self.lock = threading.Condition()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(CLIENTS)]

    def client(self, n):
        i = 0
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=harness.TIMEOUT) as s:
                s.ehlo("crash.test")
                while not self.stop.is_set():
                    token = f"u-{self.round}-{n}-{i}"
                    i += 1
                    msg = (f"Subject: {token}\r\nMessage-ID: <{token}@crash.test>\r\n\r\n" +
                           ("body line\r\n" * 200))
                    s.mail("sender@crash.test")
                    for d in self.domains:
                        s.rcpt(f"{token}@{d}")
                    code, text = s.data(msg)
                    if code == 250:
                        sid = text.decode().rsplit(" ", 1)[-1]
                        with self.lock:
                            self.acked[token] = sid
                            self.lock.notify_all()
        except (OSError, smtplib.SMTPException):
            pass  # the server was killed: expected

    def start(self):
        for t in self.threads:
            t.start()

    def wait_for(self, count):
        deadline = time.monotonic() + harness.TIMEOUT
        with self.lock:
            while len(self.acked) < count and time.monotonic() < deadline:
                self.lock.wait(deadline - time.monotonic())
            return len(self.acked) >= count

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=harness.TIMEOUT)


class CrashTest(unittest.TestCase):
    def test_acknowledged_messages_survive_kill_minus_9(self):
        seed = int(os.environ.get("SLUICE_CRASH_SEED", random.randrange(1 << 30)))
        rng = random.Random(seed)
        print(f"\ncrash test seed {seed} (SLUICE_CRASH_SEED={seed} reproduces)")
        server = harness.Sluice()
        acked = {}
        try:
            for r in range(ROUNDS):
                server.start()
                recovered = server.events[-2]  # "Recovered" comes just before "Started"
                self.assertEqual(recovered["event"], "Recovered")
                self.assertGreaterEqual(recovered["messages"], len(acked))
                loader = Loader(server.port, r)
                loader.start()
                kill_after = rng.randrange(20, MAX_PER_ROUND)
                self.assertTrue(loader.wait_for(kill_after), f"round {r}: load did not reach {kill_after}")
                server.kill()  # SIGKILL: no shutdown, no flush, no destructor
                loader.join()
                with loader.lock:
                    acked.update(loader.acked)
                print(f"round {r}: killed after {len(loader.acked)} acknowledgements")
                # The next Sluice.start() reads a fresh stderr.
                server.events, server._buf = [], b""
            server.start()
            self.assertEqual(server.stop(), 0)
            spooled = collections.Counter()
            ids = {}
            for m in server.spool_ls():
                for rcpt in m["recipients"]:
                    token = rcpt.split("@")[0]
                    spooled[token] += 1
                    ids[token] = m["id"]
            missing = [t for t in acked if spooled[t] == 0]
            doubled = [t for t in acked if spooled[t] > 1]
            self.assertEqual(missing, [], f"acknowledged but lost (seed {seed})")
            self.assertEqual(doubled, [], f"acknowledged and stored twice (seed {seed})")
            for token, sid in acked.items():
                self.assertEqual(ids[token], sid, "the id in the 250 reply is the spool id")
            print(f"{len(acked)} acknowledged messages, all in the spool once; "
                  f"{sum(spooled.values()) - len(acked)} unacknowledged in-flight messages also kept")
        finally:
            server.close()


class DeliveringCrashTest(unittest.TestCase):
    KILLS = 10

    def test_kill_minus_9_while_delivering_sends_nothing_twice_and_loses_nothing(self):
        seed = int(os.environ.get("SLUICE_CRASH_SEED", random.randrange(1 << 30)))
        rng = random.Random(seed)
        print(f"\ndelivering crash test seed {seed} (SLUICE_CRASH_SEED={seed} reproduces)")
        fast = Receiver("127.0.0.1", name="fast.test").start()
        slow = Receiver("127.0.0.1", name="slow.test", hang_after=0).start()  # never ends DATA
        routes = {"fast.test": {"host": "127.0.0.1", "port": fast.port},
                  "slow.test": {"host": "127.0.0.1", "port": slow.port}}
        server = harness.Sluice(queue={"hold": False, "min_backoff": "1s", "max_backoff": "2s"},
                                delivery={"data_timeout": "60s"}, routes=routes)
        acked = {}

        def fast_tokens(rx):
            return {rc.address.split("@")[0] for t in rx.messages for rc in t.rcpts
                    if t.reply.startswith("250")}

        # A repeat at the fast site is allowed once per kill at which the spool still listed a
        # recipient the site had already taken: its 250 came, but the record of it was not yet
        # committed (or the server died reading the 250). Anything else sent twice is a bug.
        allowed = collections.Counter()
        try:
            for r in range(self.KILLS):
                server.start()
                loader = Loader(server.port, r, domains=("fast.test", "slow.test"))
                loader.start()
                target = len(fast.messages) + rng.randrange(20, 150)
                fast.wait_for(lambda rx: len(rx.messages) >= target, harness.TIMEOUT,
                              f"{target} deliveries at the fast site")
                server.kill()
                loader.join()
                with loader.lock:
                    acked.update(loader.acked)
                # The dead server's connections end: what the site took is now final.
                fast.wait_for(lambda rx: rx.active == 0, harness.TIMEOUT, "fast connections closed")
                pending = {rcpt.split("@")[0] for m in server.spool_ls()
                           for rcpt in m["recipients"] if rcpt.endswith("@fast.test")}
                allowed.update(pending & fast_tokens(fast))
                server.events, server._buf = [], b""
            server.start()
            # Every acknowledged message reaches the fast site; the slow one keeps its copy.
            fast.wait_for(lambda rx: set(acked) <= fast_tokens(rx), harness.TIMEOUT,
                          "every acknowledged message at the fast site")
            self.assertEqual(server.stop(), 0)

            delivered = collections.Counter(
                rc.address.split("@")[0] for t in fast.messages for rc in t.rcpts
                if t.reply.startswith("250"))
            again = sum(n - 1 for n in delivered.values())  # deliveries beyond the first
            print(f"{len(acked)} acknowledged, {sum(delivered.values())} deliveries at the fast "
                  f"site, {again} of them repeats; {sum(allowed.values())} taken but not yet "
                  f"recorded at the {self.KILLS} kills")
            unexplained = {t: n - 1 for t, n in delivered.items() if n - 1 > allowed[t]}
            self.assertEqual(unexplained, {}, f"sent again though recorded as delivered (seed {seed})")
            spooled = collections.Counter()
            for m in server.spool_ls():
                for rcpt in m["recipients"]:
                    token, domain = rcpt.split("@")
                    self.assertEqual(domain, "slow.test", m)  # fast recipients are all done
                    spooled[token] += 1
            lost = [t for t in acked if spooled[t] != 1]
            self.assertEqual(lost, [], f"acknowledged but lost or doubled (seed {seed})")
        finally:
            server.close()
            fast.stop()
            slow.stop()

    def test_sigterm_during_heavy_delivery_stops_cleanly(self):
        """SIGTERM while hundreds of jobs report and the spool writes: exit 0 (under ASan, in
        `make asan`, any callback that outlived what it reaches would fail this), and nothing
        acknowledged is lost."""
        fast = Receiver("127.0.0.1", name="fast.test").start()
        slow = Receiver("127.0.0.1", name="slow.test", hang_after=0).start()
        routes = {"fast.test": {"host": "127.0.0.1", "port": fast.port},
                  "slow.test": {"host": "127.0.0.1", "port": slow.port}}
        server = harness.Sluice(queue={"hold": False}, delivery={"data_timeout": "60s"},
                                server={"shutdown_grace": "1s"}, routes=routes)
        try:
            server.start()
            loader = Loader(server.port, 0, domains=("fast.test", "slow.test"))
            loader.start()
            fast.wait_for(lambda rx: len(rx.messages) >= 200, harness.TIMEOUT, "200 deliveries")
            self.assertEqual(server.stop(), 0)
            loader.join()
            spooled = {rcpt.split("@")[0] for m in server.spool_ls() for rcpt in m["recipients"]}
            with loader.lock:
                self.assertLessEqual(set(loader.acked), spooled)  # the slow half of each is kept
        finally:
            server.close()
            fast.stop()
            slow.stop()

    def test_sigterm_while_mx_lookups_are_out_stops_cleanly(self):
        """Lookups that never get an answer are still out when the server stops: the resolver
        completes them on its way down, and what it calls must still exist (under ASan, in
        `make asan`, a callback into a destroyed queue manager fails this)."""
        dns = dnsfixture.DnsServer([dnsfixture.timeout("silent.test")], ttl=60).start()
        server = harness.Sluice(queue={"hold": False}, server={"shutdown_grace": "1s"},
                                dns={"nameservers": [dns.nameserver], "timeout": "5s"})
        try:
            server.start()
            with smtplib.SMTP("127.0.0.1", server.port, timeout=harness.TIMEOUT) as c:
                for i in range(20):
                    c.sendmail("s@example.org", [f"r@d{i}.silent.test"], "Subject: x\r\n\r\nx\r\n")
            dns.wait_for_queries(20)
            self.assertEqual(server.stop(), 0)
            self.assertEqual(len(server.spool_ls()), 20)
        finally:
            server.close()
            dns.stop()


if __name__ == "__main__":
    unittest.main()
