"""Self-test of tests/receiver.py, the SMTP receiver of the delivery tests, driven by Python's
smtplib and a raw socket client. Needs openssl (for the STARTTLS certificate), not sluice.

Run by hand:
    cd tests && python3 -m unittest -v test_receiver
Every wait is for an event (a reply, a close, a recorded transaction) bounded by a timeout; the
only short timeouts are where a reply must not come (a hung DATA).
"""
import smtplib
import socket
import ssl
import tempfile
import time
import unittest

import harness
from receiver import Receiver

TIMEOUT = 10   # seconds: every event wait, never a performance threshold
SHORT = 0.5    # seconds to wait for a reply that must not come
BODY = "Subject: test\r\n\r\nHello.\r\n.leading dot\r\n..two dots\r\n."
_files = {}


def setUpModule():
    _files["tmp"] = tempfile.TemporaryDirectory(prefix="sluice-receiver-")
    _files["tls"] = harness.make_tls(_files["tmp"].name)


def tearDownModule():
    _files["tmp"].cleanup()


class Raw:
    """A line-level client: send() bytes as they are, reply() reads one (multi-line) reply."""

    def __init__(self, rx, timeout=TIMEOUT):
        self.sock = socket.create_connection((rx.address, rx.port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def reply(self):
        lines = [self.file.readline().decode()]
        while lines[-1][3:4] == "-":
            lines.append(self.file.readline().decode())
        if not lines[-1].endswith("\r\n"):
            raise ConnectionError(f"closed in a reply: {lines}")
        return int(lines[0][:3]), [l[4:].rstrip("\r\n") for l in lines]

    def codes(self, n):
        return [self.reply()[0] for _ in range(n)]

    def closed(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.file.close()
        self.sock.close()


class ReceiverCase(unittest.TestCase):
    def receiver(self, **kw):
        rx = Receiver(**kw).start()
        self.addCleanup(rx.stop)
        return rx

    def smtp(self, rx, **kw):
        c = smtplib.SMTP(rx.address, rx.port, local_hostname="client.test", timeout=TIMEOUT, **kw)
        self.addCleanup(c.close)
        return c

    def raw(self, rx, ehlo=True, **kw):
        c = Raw(rx, **kw)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        if ehlo:
            c.send("EHLO raw.test\r\n")
            self.assertEqual(c.reply()[0], 250)
        return c


class Transactions(ReceiverCase):
    def test_plain_message(self):
        rx = self.receiver()
        c = self.smtp(rx)
        self.assertEqual(c.sendmail("from@a.test", ["r1@b.test", "r2@b.test"], BODY), {})
        c.quit()
        [t] = rx.wait_for_messages(1)
        self.assertEqual((t.client, t.ehlo, t.tls, t.mail_from, t.mail_params),
                         ("127.0.0.1", "client.test", False, "from@a.test", {}))
        self.assertEqual([(r.address, r.params, r.reply) for r in t.rcpts],
                         [("r1@b.test", {}, "250 2.1.5 Ok"), ("r2@b.test", {}, "250 2.1.5 Ok")])
        self.assertEqual(t.data,
                         b"Subject: test\r\n\r\nHello.\r\n.leading dot\r\n..two dots\r\n.\r\n")
        self.assertEqual((t.end, t.reply, t.pipelined),
                         ("done", "250 2.0.0 Ok: queued as 1", False))
        self.assertEqual(t.accepted, ["r1@b.test", "r2@b.test"])
        rx.wait_for(lambda r: r.active == 0, what="the connection's end")
        self.assertEqual((rx.connections, rx.peak), (1, 1))

    def test_extensions_and_parameters(self):
        c = self.smtp(self.receiver())
        c.ehlo()
        for k in ("pipelining", "8bitmime", "enhancedstatuscodes"):
            self.assertTrue(c.has_extn(k), k)
        for k in ("smtputf8", "dsn", "size", "starttls", "chunking"):
            self.assertFalse(c.has_extn(k), k)

        rx = self.receiver(pipelining=False, eightbitmime=False, smtputf8=True, dsn=True, size=1000)
        c = self.smtp(rx)
        c.ehlo()
        self.assertEqual([c.has_extn(k) for k in ("pipelining", "8bitmime", "smtputf8", "dsn")],
                         [False, False, True, True])
        self.assertEqual(c.esmtp_features["size"], "1000")
        self.assertEqual(c.mail("big@a.test", ["SIZE=1001"]),
                         (552, b"5.3.4 Message size exceeds fixed limit"))
        c.rset()
        c.sendmail("s@a.test", ["r@b.test"], BODY, mail_options=["BODY=8BITMIME", "SMTPUTF8"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;r@b.test"])
        t = rx.wait_for_messages(1)[0]
        self.assertEqual(t.mail_params, {"SIZE": str(len(BODY)), "BODY": "8BITMIME",
                                         "SMTPUTF8": None})
        self.assertEqual(t.rcpts[0].params,
                         {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;r@b.test"})
        self.assertEqual(rx.transactions[0].mail_reply[:3], "552")

    def test_helo_fallback_and_null_sender(self):
        rx = self.receiver(esmtp=False)
        c = self.smtp(rx)
        c.sendmail("", ["r@b.test"], BODY)  # smtplib tries EHLO, gets 502, says HELO
        self.assertIsNone(c.esmtp_features.get("pipelining"))
        t = rx.wait_for_messages(1)[0]
        self.assertEqual((t.ehlo, t.mail_from), ("client.test", ""))

    def test_starttls(self):
        rx = self.receiver(tls=_files["tls"])
        c = self.smtp(rx)
        c.ehlo()
        self.assertTrue(c.has_extn("starttls"))
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        self.assertEqual(c.starttls(context=ctx)[0], 220)
        self.assertEqual(c.docmd("MAIL FROM:<a@a.test>")[0], 503)  # EHLO again first
        c.ehlo()
        self.assertFalse(c.has_extn("starttls"))
        c.sendmail("a@a.test", ["r@b.test"], BODY)
        c.quit()
        t = rx.wait_for_messages(1)[0]
        self.assertTrue(t.tls)
        self.assertEqual(t.ehlo, "client.test")

    def test_pipelined_commands_and_recipient_replies(self):
        rx = self.receiver(rcpt_replies={"^bad@": "550 5.1.1 no such user",
                                         "later@": "451 4.3.0 try later"})
        c = self.raw(rx)
        c.send("MAIL FROM:<a@a.test> BODY=8BITMIME\r\nRCPT TO:<ok@b.test>\r\n"
               "RCPT TO:<bad@b.test>\r\nRCPT TO:<later@b.test>\r\nDATA\r\n")
        self.assertEqual(c.codes(5), [250, 250, 550, 451, 354])
        c.send("Subject: x\r\n\r\n..dot\r\n.\r\n")
        self.assertEqual(c.codes(1), [250])
        # a pipelined transaction with no accepted recipient: DATA is refused
        c.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<bad@b.test>\r\nDATA\r\nRSET\r\nQUIT\r\n")
        self.assertEqual(c.codes(5), [250, 550, 554, 250, 221])
        self.assertTrue(c.closed())
        rx.wait_for(lambda r: len(r.transactions) == 2, what="2 transactions")
        t, refused = rx.transactions
        self.assertEqual([(r.address, r.reply[:3]) for r in t.rcpts],
                         [("ok@b.test", "250"), ("bad@b.test", "550"), ("later@b.test", "451")])
        self.assertEqual(t.accepted, ["ok@b.test"])
        self.assertEqual((t.data, t.mail_params, t.pipelined),
                         (b"Subject: x\r\n\r\n.dot\r\n", {"BODY": "8BITMIME"}, True))
        self.assertEqual((refused.end, refused.data, refused.accepted), ("aborted", None, []))

    def test_recipient_refusals_smtplib(self):
        rx = self.receiver(rcpt_replies={"bad@": "550 5.1.1 no such user",
                                         "later@": "451 4.3.0 try later"})
        c = self.smtp(rx)
        refused = c.sendmail("a@a.test", ["ok@b.test", "bad@b.test", "later@b.test"], BODY)
        self.assertEqual({k: v[0] for k, v in refused.items()},
                         {"bad@b.test": 550, "later@b.test": 451})
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            c.sendmail("a@a.test", ["bad@b.test"], BODY)
        rx.wait_for(lambda r: len(r.transactions) == 2, what="2 transactions")
        self.assertEqual(rx.transactions[0].accepted, ["ok@b.test"])
        self.assertEqual(rx.transactions[1].end, "aborted")  # smtplib sent RSET

    def test_mail_refused(self):
        rx = self.receiver(mail_reply="451 4.3.0 try later")
        c = self.smtp(rx)
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("a@a.test", ["r@b.test"], BODY)
        self.assertEqual(e.exception.smtp_code, 451)
        rx.wait_for(lambda r: r.transactions, what="a transaction")
        self.assertEqual((rx.transactions[0].mail_reply, rx.transactions[0].end),
                         ("451 4.3.0 try later", "aborted"))

    def test_reply_after_final_dot_and_change_while_running(self):
        rx = self.receiver(data_reply="452 4.3.1 full")
        c = self.smtp(rx)
        with self.assertRaises(smtplib.SMTPDataError) as e:
            c.sendmail("a@a.test", ["r@b.test"], BODY)
        self.assertEqual(e.exception.smtp_code, 452)
        rx.data_reply = "554 5.7.1 rejected"
        with self.assertRaises(smtplib.SMTPDataError) as e:
            c.sendmail("a@a.test", ["r@b.test"], BODY)
        self.assertEqual(e.exception.smtp_code, 554)
        rx.data_reply = None
        c.sendmail("a@a.test", ["r@b.test"], BODY)
        self.assertEqual([(t.reply[:3], t.end) for t in rx.wait_for_messages(3)],
                         [("452", "done"), ("554", "done"), ("250", "done")])
        self.assertTrue(all(t.data.startswith(b"Subject: test") for t in rx.messages))


class Failures(ReceiverCase):
    def test_banner_421_closes(self):
        rx = self.receiver(banner="421 4.7.0 too busy")
        with self.assertRaises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP(rx.address, rx.port, timeout=TIMEOUT)
        self.assertEqual(e.exception.smtp_code, 421)
        c = Raw(rx)
        self.addCleanup(c.close)
        self.assertEqual(c.reply(), (421, ["4.7.0 too busy"]))
        self.assertTrue(c.closed())

    def test_banner_554_then_503_until_quit(self):
        rx = self.receiver(banner="554 5.3.2 no service here")
        c = Raw(rx)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 554)
        c.send("EHLO raw.test\r\nMAIL FROM:<a@a.test>\r\nQUIT\r\n")
        self.assertEqual(c.codes(3), [503, 503, 221])
        self.assertTrue(c.closed())

    def test_hang_mid_data(self):
        rx = self.receiver(hang_after=100)
        c = self.raw(rx)
        c.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<r@b.test>\r\nDATA\r\n")
        self.assertEqual(c.codes(3), [250, 250, 354])
        c.send("Subject: hang\r\n\r\n" + "x" * 78 + "\r\n" * 2000 + ".\r\n")
        rx.wait_for(lambda r: r.transactions, what="the hang")
        t = rx.transactions[0]
        self.assertEqual(t.end, "hang")
        self.assertTrue(100 <= len(t.data) < 4000 and t.data.startswith(b"Subject: hang"), t.data)
        c.sock.settimeout(SHORT)
        with self.assertRaises(socket.timeout):  # no reply to the final dot, no close
            c.sock.recv(1)
        self.assertEqual(rx.active, 1)
        c.sock.settimeout(TIMEOUT)
        start = time.monotonic()
        rx.stop()  # closes the hung connection
        self.assertLess(time.monotonic() - start, TIMEOUT)
        self.assertTrue(c.closed())

    def test_hang_seen_by_smtplib_as_timeout(self):
        rx = self.receiver(hang_after=0)
        c = smtplib.SMTP(rx.address, rx.port, timeout=SHORT)
        self.addCleanup(c.close)
        with self.assertRaisesRegex(smtplib.SMTPServerDisconnected, "timed out"):
            c.sendmail("a@a.test", ["r@b.test"], BODY)
        rx.wait_for(lambda r: r.transactions, what="the hang")
        self.assertEqual((rx.transactions[0].end, rx.transactions[0].data), ("hang", b""))

    def test_drop_mid_data(self):
        rx = self.receiver(drop_after=100)
        c = self.smtp(rx)
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            c.sendmail("a@a.test", ["r@b.test"], "Subject: drop\r\n\r\n" + "y" * 78 + "\r\n" * 2000)
        rx.wait_for(lambda r: r.active == 0, what="the drop")
        [t] = rx.transactions
        self.assertEqual(t.end, "drop")
        self.assertTrue(100 <= len(t.data) < 4000, len(t.data))
        rx.drop_after = None  # the next connection gets through
        self.smtp(rx).sendmail("a@a.test", ["r@b.test"], BODY)
        self.assertEqual(len(rx.wait_for_messages(1)), 1)


class Connections(ReceiverCase):
    def test_concurrent_connections_counted(self):
        rx = self.receiver()
        clients = [self.smtp(rx) for _ in range(3)]
        for c in clients:
            c.ehlo()
        rx.wait_for(lambda r: r.active == 3, what="3 open connections")
        for c in clients:
            c.quit()
        rx.wait_for(lambda r: r.active == 0, what="no open connection")
        self.smtp(rx).quit()
        rx.wait_for(lambda r: r.connections == 4 and r.active == 0, what="a 4th connection")
        self.assertEqual(rx.peak, 3)

    def test_other_loopback_address(self):
        rx = self.receiver(address="127.0.0.3")
        self.assertEqual(rx.address, "127.0.0.3")
        c = self.smtp(rx, source_address=("127.0.0.5", 0))
        c.sendmail("a@a.test", ["r@b.test"], BODY)
        self.assertEqual(rx.wait_for_messages(1)[0].client, "127.0.0.5")

    def test_stop_closes_idle_connections(self):
        rx = self.receiver()
        c = self.raw(rx)
        rx.wait_for(lambda r: r.active == 1, what="the connection")
        rx.stop()
        self.assertTrue(c.closed())
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((rx.address, rx.port), timeout=TIMEOUT).close()

    def test_waits_are_bounded(self):
        rx = self.receiver()
        with self.assertRaisesRegex(AssertionError, "timed out waiting for 1 messages"):
            rx.wait_for_messages(1, timeout=0.1)


if __name__ == "__main__":
    unittest.main()
