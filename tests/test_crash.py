"""Crash safety: every message that got a 250 survives kill -9, exactly once.

Several clients inject over loopback while the server is killed with SIGKILL at a random point
(after a random number of acknowledgements), then restarted on the same spool, several times.
Each message carries a unique recipient token; at the end the spool must hold every
acknowledged token exactly once. Messages that were in flight when the server died may or may
not be there (the client never got a 250, so it would retry): they are not counted.

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

import harness

ROUNDS = 4
CLIENTS = 8
MAX_PER_ROUND = 400


class Loader:
    """CLIENTS threads sending until told to stop or the server dies under them."""

    def __init__(self, port, round_no):
        self.port = port
        self.round = round_no
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
                    s.rcpt(f"{token}@example.test")
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


if __name__ == "__main__":
    unittest.main()
