"""Fault injection, receivers' side: sluice delivers to receivers that misbehave in every way
tests/hostile.py knows (hang at the banner, trickle a byte at a time, a 10 MB reply line,
256-line replies, garbage, a reset in the middle of DATA, 250 to DATA, a failing TLS handshake,
a close after RCPT).

What it shows, for each: sluice ends the connection within its reply deadline, nothing is counted
as delivered, every message stays in the spool for its next attempt (or, refused for good, is
bounced with a DSN whose lines are at most 998 octets), sluice keeps running and stops cleanly,
and its resident memory stays bounded (the peak is printed).
Waits are for events (a connection ending, a log record), bounded; nothing sleeps.
"""
import os
import smtplib
import unittest

import harness
from hostile import MODES, Hostile
from receiver import Receiver

TIMEOUT = 60
MAX_RSS_MB = 200  # a bound far above what sluice needs, far below a 10 MB reply held per message


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


class HostileReceivers(unittest.TestCase):
    def test_every_hostile_receiver_is_survived_and_nothing_is_lost_or_counted_delivered(self):
        hostiles = {m: Hostile(m).start() for m in MODES}
        dsn_rx = Receiver("127.0.0.1", name="mx.sender.test").start()
        routes = {f"{m}.test": {"host": "127.0.0.1", "port": h.port} for m, h in hostiles.items()}
        routes["sender.test"] = {"host": "127.0.0.1", "port": dsn_rx.port}
        server = harness.Sluice(
            queue={"hold": False, "min_backoff": "1s", "max_backoff": "2s"},
            delivery={"command_timeout": "2s", "data_timeout": "2s", "connect_timeout": "2s"},
            routes=routes)
        try:
            server.start()
            with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as c:
                for m in MODES:
                    c.sendmail("s@sender.test", [f"r@{m}.test"],
                               f"Subject: {m}\r\n\r\nto a hostile receiver: {m}\r\n")
            # Each hostile receiver had a connection that sluice ended (or it ended itself):
            # a trickle that never finishes its reply holds no connection beyond the deadline.
            for m, h in hostiles.items():
                h.wait_closed(1, TIMEOUT)

            # The 256-line refusal: bounced, with the reply cut and every DSN line folded.
            [dsn] = dsn_rx.wait_for_messages(1, TIMEOUT)
            lines = dsn.data.split(b"\r\n")
            self.assertLessEqual(max(len(l) for l in lines), 998)
            self.assertLess(len(dsn.data), 64 * 1024)
            self.assertIn(b"Diagnostic-Code: smtp; 550 5.7.1\r\n refusedyyy", dsn.data)

            # 250 to DATA is not a delivery: a transient protocol error, retried.
            r = server.wait_records(
                lambda r: r.get("event") == "TransientFailure"
                and r["recipient"].endswith("@data-250.test"),
                "the out-of-step DATA reply")[0]
            self.assertEqual(r["enhanced"], "4.5.0")
            self.assertIn("where 354 was expected", r["reply"])

            for m in ("trickle", "huge-line", "garbage", "tls-fail"):
                server.wait_records(
                    lambda r, m=m: r.get("event") == "TransientFailure"
                    and r["recipient"].endswith(f"@{m}.test"), f"a failure at {m}")
            for r in server.log_records():
                self.assertLessEqual(len(r.get("reply", "")), 2100, r)

            rss = peak_rss_mb(server.proc.pid)
            print(f"\npeak resident memory of sluice: {rss:.1f} MB")
            self.assertLess(rss, MAX_RSS_MB)
            self.assertEqual(server.stop(), 0)

            # The only delivery is the DSN's.
            self.assertEqual([r["recipient"] for r in server.log_records("Delivery")],
                             ["s@sender.test"])
            spooled = {m["recipients"][0].split("@")[1] for m in server.spool_ls()}
            self.assertEqual(spooled, {f"{m}.test" for m in MODES if m != "many-lines"})
        finally:
            server.close()
            dsn_rx.stop()
            for h in hostiles.values():
                h.stop()


if __name__ == "__main__":
    unittest.main()
