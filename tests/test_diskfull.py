"""Disk full: the spool on a small tmpfs fills up; clients get 452 4.3.1, nothing acknowledged
is lost, the server keeps running, and once space is freed it accepts mail again.

"Full" is spool.min_free_space (8 MB here) from the end of the disk, as Postfix's queue_minfree:
RocksDB must keep room for its flushes and must not meet ENOSPC itself.

Needs root (mount -t tmpfs), as CI runs. Bounded: at most MAX_MESSAGES per phase.
"""
import os
import smtplib
import subprocess
import tempfile
import unittest

import harness

MOUNT_SIZE = "48m"
BODY = "x" * 998 + "\r\n"
MESSAGE = "Subject: fill\r\n\r\n" + BODY * 256  # ~256 KB
MAX_MESSAGES = 400


def send(port, n):
    """Sends one message; returns (code, text)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=harness.TIMEOUT) as s:
        s.ehlo("disk.test")
        s.mail("sender@disk.test")
        s.rcpt(f"d{n}@example.test")
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


if __name__ == "__main__":
    unittest.main()
