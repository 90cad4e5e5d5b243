"""Disk full: the spool on a small tmpfs fills up; clients get 452 4.3.1, nothing acknowledged
is lost, the server keeps running, and once space is freed it accepts mail again.

"Full" is spool.min_free_space (8 MB here) from the end of the disk, as Postfix's queue_minfree:
RocksDB must keep room for its flushes and must not meet ENOSPC itself.

With a backlog (test_full_disk_with_a_backlog): the disk fills with held mail, then delivery
starts while it is still full. Deliveries free space (removes pass the guard that refuses new
mail), every refused recipient's bounce reaches its sender (a DSN that cannot be stored yet
keeps its original message, which is tried again), and new mail is accepted again once
deliveries have made room, with nothing deleted by hand.

Needs root (mount -t tmpfs), as CI runs. Bounded: at most MAX_MESSAGES per phase.
"""
import json
import os
import re
import smtplib
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import harness
from receiver import Receiver

MOUNT_SIZE = "48m"
BODY = "x" * 998 + "\r\n"
MESSAGE = "Subject: fill\r\n\r\n" + BODY * 256  # ~256 KB
MAX_MESSAGES = 400


def send(port, n, domain="example.test"):
    """Sends one message; returns (code, text)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=harness.TIMEOUT) as s:
        s.ehlo("disk.test")
        s.mail("sender@sender.test")
        s.rcpt(f"d{n}@{domain}")
        code, text = s.data(MESSAGE)
        return code, text.decode()


class DiskFullTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sluice-diskfull-")
        self.mnt = os.path.join(self.tmp.name, "mnt")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MOUNT_SIZE}", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.tmp.cleanup()
            self.fail("this test mounts a small tmpfs and needs root (CI runs as root): "
                      + r.stderr.strip())

    def tearDown(self):
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        self.tmp.cleanup()

    def test_full_disk_gives_452_and_loses_nothing(self):
        server = harness.Sluice(directory=self.tmp.name, spool_path=os.path.join(self.mnt, "spool"),
                                spool={"min_free_space": "8MB"})
        try:
            server.start()
            # Ballast leaves a few MB for the spool; deleting it later frees the disk.
            ballast = os.path.join(self.mnt, "ballast")
            st = os.statvfs(self.mnt)
            free = st.f_bavail * st.f_frsize
            with open(ballast, "wb") as f:
                f.write(b"\0" * max(0, free - 16 * 1024 * 1024))

            acked, refused = {}, 0
            for n in range(MAX_MESSAGES):
                code, text = send(server.port, n)
                if code == 250:
                    acked[f"d{n}"] = text.rsplit(" ", 1)[-1]
                else:
                    self.assertEqual(code, 452, text)
                    self.assertTrue(text.startswith("4.3.1"), text)
                    refused += 1
                    if refused >= 3:
                        break
            self.assertGreater(len(acked), 0, "some messages fit before the disk filled")
            self.assertGreaterEqual(refused, 3, "the disk never filled: raise the message count")

            # Still serving.
            with smtplib.SMTP("127.0.0.1", server.port, timeout=harness.TIMEOUT) as s:
                self.assertEqual(s.ehlo("still.there")[0], 250)
                self.assertEqual(s.noop()[0], 250)

            # Free the space: the spool resumes and accepts again.
            os.unlink(ballast)
            resumed = False
            for n in range(MAX_MESSAGES, MAX_MESSAGES + 20):
                code, text = send(server.port, n)
                if code == 250:
                    acked[f"d{n}"] = text.rsplit(" ", 1)[-1]
                    resumed = True
                    break
                self.assertEqual(code, 452, text)
            self.assertTrue(resumed, "the spool did not accept mail again after space was freed")
            self.assertEqual(server.stop(), 0)  # the exit drains the event log
            self.assertTrue(any(r.get("event") == "SpoolError" for r in server.log_records()))
            spooled = {}
            for m in server.spool_ls():
                for rcpt in m["recipients"]:
                    spooled.setdefault(rcpt.split("@")[0], []).append(m["id"])
            for token, sid in acked.items():
                self.assertEqual(spooled.get(token), [sid], f"{token} acknowledged as {sid}")
            print(f"\n{len(acked)} acknowledged, {refused} refused with 452 while full, "
                  f"{len(spooled)} in the spool after restart")
        finally:
            server.close()

    def test_injection_api_answers_503_on_a_full_disk_and_loses_nothing(self):
        server = harness.Sluice(directory=self.tmp.name, spool_path=os.path.join(self.mnt, "spool"),
                                spool={"min_free_space": "8MB"})

        def inject(n, count):
            body = {"envelope_sender": "", "content": MESSAGE,
                    "recipients": [{"email": f"h{n}x{k}@example.test"} for k in range(count)]}
            req = urllib.request.Request(f"http://127.0.0.1:{server.http_port}/api/inject/v1",
                                         data=json.dumps(body).encode())
            try:
                with urllib.request.urlopen(req, timeout=harness.TIMEOUT) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())
        try:
            server.start()
            ballast = os.path.join(self.mnt, "ballast")
            st = os.statvfs(self.mnt)
            with open(ballast, "wb") as f:
                f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 16 * 1024 * 1024))
            injected, full = 0, None
            for n in range(MAX_MESSAGES // 4):
                status, answer = inject(n, 4)
                if status == 503:
                    full = answer
                    break
                self.assertEqual(status, 200, answer)
                injected += answer["success_count"]
            self.assertIsNotNone(full, "the disk never filled")
            self.assertEqual(full["success_count"], 0)
            self.assertTrue(full["errors"], full)
            # Still serving, and injecting again once there is room.
            os.unlink(ballast)
            status, answer = inject(9999, 1)
            self.assertEqual((status, answer["success_count"]), (200, 1), answer)
            self.assertEqual(server.stop(), 0)
            spooled = [r for m in server.spool_ls() for r in m["recipients"]]
            self.assertEqual(len(spooled), injected + 1)  # every 200's recipient, nothing else
        finally:
            server.close()

    def fill(self, server, domain_of):
        """Ballast leaves ~16 MB; sends until three 452s. Returns {token: id} acknowledged."""
        ballast = os.path.join(self.mnt, "ballast")
        st = os.statvfs(self.mnt)
        with open(ballast, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 16 * 1024 * 1024))
        acked, refused = {}, 0
        for n in range(MAX_MESSAGES):
            code, text = send(server.port, n, domain_of(n))
            if code == 250:
                acked[f"d{n}"] = text.rsplit(" ", 1)[-1]
            else:
                self.assertEqual(code, 452, text)
                refused += 1
                if refused >= 3:
                    break
        self.assertGreaterEqual(refused, 3, "the disk never filled: raise the message count")
        return acked

    def test_full_disk_with_a_backlog(self):
        ok_rx = Receiver("127.0.0.1", name="ok.test").start()
        bad_rx = Receiver("127.0.0.1", name="bad.test",
                          rcpt_replies={".": "550 5.1.1 no such user"}).start()
        dsn_rx = Receiver("127.0.0.1", name="sender.test").start()
        routes = {d: {"host": "127.0.0.1", "port": rx.port}
                  for d, rx in (("ok.test", ok_rx), ("bad.test", bad_rx), ("sender.test", dsn_rx))}
        kw = dict(directory=self.tmp.name, spool_path=os.path.join(self.mnt, "spool"),
                  spool={"min_free_space": "8MB"}, routes=routes)
        held = harness.Sluice(**kw)
        server = None
        try:
            held.start()
            acked = self.fill(held, lambda n: "bad.test" if n % 4 == 0 else "ok.test")
            self.assertEqual(held.stop(), 0)
            bad = {t for t in acked if int(t[1:]) % 4 == 0}

            server = harness.Sluice(queue={"hold": False, "min_backoff": "1s",
                                           "max_backoff": "2s"}, **kw)
            server.start()
            ok_rx.wait_for(lambda rx: {t.rcpts[0].address.split("@")[0] for t in rx.messages}
                           >= set(acked) - bad, 60, "every message at ok.test")
            # Every refused recipient's bounce arrives, however full the disk was.
            dsn_rx.wait_for(lambda rx: len(rx.messages) >= len(bad), 60, f"{len(bad)} DSNs")
            bounced = {re.search(rb"Final-Recipient: rfc822; (d\d+)@", t.data).group(1).decode()
                       for t in dsn_rx.messages}
            self.assertEqual(bounced, bad)
            # The deliveries made room: new mail is accepted again, the ballast untouched.
            accepted = False
            for n in range(MAX_MESSAGES, MAX_MESSAGES + 50):
                code, text = send(server.port, n, "ok.test")
                if code == 250:
                    accepted = True
                    break
                self.assertEqual(code, 452, text)
            self.assertTrue(accepted, "no room after the backlog was delivered")
            self.assertEqual(server.stop(), 0)
            print(f"\n{len(acked)} held while filling the disk; {len(acked) - len(bad)} delivered "
                  f"and {len(bad)} bounced with the disk still full; new mail accepted after")
        finally:
            if server:
                server.close()
            held.close()
            for rx in (ok_rx, bad_rx, dsn_rx):
                rx.stop()


if __name__ == "__main__":
    unittest.main()
