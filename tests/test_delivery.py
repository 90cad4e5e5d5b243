"""End-to-end delivery: sluice takes mail over SMTP, resolves MX records from a real DNS server
(dnsmasq, tests/dnsfixture.py) and delivers to real SMTP receivers on loopback addresses
(tests/receiver.py), with every outcome: success, transient failure and retry, permanent
failure with a DSN to the sender, expiry, mixed results per recipient, TLS, pipelining,
several recipients per transaction, connection reuse, and a receiver that hangs or drops the
connection in the middle of DATA (the message is retried, not lost).

Receivers listen on 127.0.0.2, .3 and .4 at one port, which sluice uses for MX hosts
([delivery] port). Backoff is 1 s in these tests, so a retry is an event a second away; every
wait is bounded.
"""
import smtplib
import socket
import unittest

import dnsfixture
import harness
from receiver import Receiver

TIMEOUT = 20


def common_port():
    """A port free on 127.0.0.2, .3 and .4 at once."""
    return harness.common_port(("127.0.0.2", "127.0.0.3", "127.0.0.4"))


ZONE = [
    dnsfixture.mx("example.test", "mx1.example.test", 10),
    dnsfixture.mx("example.test", "mx2.example.test", 20),
    dnsfixture.host("mx1.example.test", "127.0.0.2"),
    dnsfixture.host("mx2.example.test", "127.0.0.3"),
    dnsfixture.mx("other.test", "mx1.example.test", 10),   # same hosts: same site
    dnsfixture.mx("other.test", "mx2.example.test", 20),
    dnsfixture.mx("down.test", "mxdown.example.test", 10),
    dnsfixture.mx("down.test", "mx2.example.test", 20),
    dnsfixture.host("mxdown.example.test", "127.0.0.9"),    # nothing listens there
    dnsfixture.host("nomx.test", "127.0.0.2"),              # no MX: implicit MX (A record)
    dnsfixture.mx("cached.test", "mx1.example.test", 10),   # TTL 60: asked once
    dnsfixture.null_mx("nullmx.test"),
    dnsfixture.servfail("servfail.test"),
    dnsfixture.mx("sender.test", "mx.sender.test", 10),     # where DSNs go
    dnsfixture.host("mx.sender.test", "127.0.0.4"),
]


class DeliveryCase(unittest.TestCase):
    """One DNS server, three receivers and one sluice for the class; receivers' behaviour is
    reset before each test."""
    DELIVERY = {}
    QUEUE = {}

    @classmethod
    def setUpClass(cls):
        cls.port = common_port()
        cls.dns = dnsfixture.DnsServer(ZONE, ttl=60).start()
        cls.rx1 = Receiver("127.0.0.2", cls.port, name="mx1.example.test").start()
        cls.rx2 = Receiver("127.0.0.3", cls.port, name="mx2.example.test").start()
        cls.dsn_rx = Receiver("127.0.0.4", cls.port, name="mx.sender.test").start()
        delivery = dict({"port": cls.port, "data_timeout": "2s", "command_timeout": "5s",
                         "connect_timeout": "2s"}, **cls.DELIVERY)
        queue = dict({"hold": False, "min_backoff": "1s", "max_backoff": "2s"}, **cls.QUEUE)
        cls.server = harness.Sluice(queue=queue, delivery=delivery,
                                    dns={"nameservers": [cls.dns.nameserver], "timeout": "1s"})
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        for rx in (cls.rx1, cls.rx2, cls.dsn_rx):
            rx.stop()
        cls.dns.stop()

    def send(self, rcpts, sender="alice@sender.test", body="Subject: t\r\n\r\nhello\r\n",
             mail_options=(), rcpt_options=()):
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=TIMEOUT) as s:
            s.ehlo("client.test")
            code, text = s.mail(sender, list(mail_options))
            self.assertEqual(code, 250, text)
            for r in rcpts:
                code, text = s.rcpt(r, list(rcpt_options))
                self.assertEqual(code, 250, text)
            code, text = s.data(body)
            self.assertEqual(code, 250, text)
            return text.decode().rsplit(" ", 1)[-1]

    def events(self, qid, event):
        """The first record of `event` for message qid, as a one-element list."""
        return self.server.wait_records(
            lambda r: r.get("id") == qid and r.get("event") == event, f"{event} of {qid}",
            TIMEOUT)[:1]

    def wait_all(self, qid, event, count):
        found = []
        def enough(_r):
            found[:] = [r for r in self.server.log_records() if r.get("id") == qid and r.get("event") == event]
            return len(found) >= count
        self.server.wait_records(enough, f"{count} {event} records of {qid}", TIMEOUT)
        return found


class Outcomes(DeliveryCase):
    def test_delivers_to_the_preferred_mx(self):
        n = len(self.rx1.messages)
        qid = self.send(["bob@example.test"])
        [rec] = self.events(qid, "Delivery")
        self.assertEqual(rec["remote_ip"], "127.0.0.2")
        self.assertEqual(rec["site"], "mx1.example.test,mx2.example.test")
        self.assertEqual(rec["stage"], "end-of-data")
        self.rx1.wait_for(lambda rx: len(rx.messages) > n)
        msg = self.rx1.messages[-1]
        self.assertEqual(msg.mail_from, "alice@sender.test")
        self.assertIn(b"Received: from client.test", msg.data)
        self.assertTrue(msg.pipelined)

    def test_falls_back_to_the_next_mx_when_the_first_is_down(self):
        qid = self.send(["carol@down.test"])
        [rec] = self.events(qid, "Delivery")
        self.assertEqual(rec["remote_ip"], "127.0.0.3")

    def test_a_host_refusing_at_the_banner_or_ehlo_passes_the_mail_to_the_next_mx(self):
        # RFC 5321 §5: a 4xx greeting or EHLO reply is this host's, not the site's. Nothing
        # else to the site works, so the next MX is tried at once (no retry, no charge).
        for attr, reply in (("banner", "421 4.3.2 mx1 is overloaded, try another host"),
                            ("ehlo_reply", "451 4.3.0 not now")):
            with self.subTest(attr=attr):
                saved = getattr(self.rx1, attr)
                setattr(self.rx1, attr, reply)
                try:
                    qid = self.send([f"{attr}@example.test"])
                    [rec] = self.events(qid, "Delivery")
                    self.assertEqual(rec["remote_ip"], "127.0.0.3")
                    self.assertEqual(rec["attempt"], 1)
                finally:
                    setattr(self.rx1, attr, saved)

    def test_implicit_mx_uses_the_domain_address(self):
        qid = self.send(["dave@nomx.test"])
        [rec] = self.events(qid, "Delivery")
        self.assertEqual(rec["remote_ip"], "127.0.0.2")
        self.assertEqual(rec["site"], "nomx.test")

    def test_mx_answers_are_cached_for_their_ttl(self):
        first = self.send(["c1@cached.test"])
        self.events(first, "Delivery")
        second = self.send(["c2@cached.test"])
        self.events(second, "Delivery")
        self.assertEqual(len(self.dns.queries("cached.test", "MX")), 1)

    def test_null_mx_bounces_with_a_dsn(self):
        n = len(self.dsn_rx.messages)
        qid = self.send(["erin@nullmx.test"])
        [rec] = self.events(qid, "Bounce")
        self.assertEqual((rec["code"], rec["enhanced"]), (556, "5.1.10"))
        self.dsn_rx.wait_for(lambda rx: len(rx.messages) > n, what="the DSN")
        dsn = self.dsn_rx.messages[-1]
        self.assertEqual(dsn.mail_from, "")
        self.assertEqual(dsn.rcpts[0].address, "alice@sender.test")
        self.assertIn(b"multipart/report; report-type=delivery-status", dsn.data)
        self.assertIn(b"Final-Recipient: rfc822; erin@nullmx.test", dsn.data)
        self.assertIn(b"Status: 5.1.10", dsn.data)

    def test_nxdomain_is_permanent(self):
        qid = self.send(["frank@nosuch.test"])
        [rec] = self.events(qid, "Bounce")
        self.assertEqual((rec["code"], rec["enhanced"], rec["stage"]), (550, "5.1.2", "dns"))

    def test_servfail_is_transient_and_retried(self):
        qid = self.send(["gina@servfail.test"])
        recs = self.wait_all(qid, "TransientFailure", 2)  # first attempt and a retry
        self.assertEqual(recs[0]["stage"], "dns")
        self.assertEqual(recs[1]["attempt"], 2)

    def test_several_recipients_share_one_transaction_and_sites_are_shared(self):
        n = len(self.rx1.messages)
        qid = self.send(["a1@example.test", "a2@example.test", "a3@other.test"])
        recs = self.wait_all(qid, "Delivery", 3)
        self.assertEqual({r["site"] for r in recs}, {"mx1.example.test,mx2.example.test"})
        self.rx1.wait_for(lambda rx: len(rx.messages) > n)
        mine = [m for m in self.rx1.messages[n:] if "a1@example.test" in m.accepted]
        self.assertEqual(len(mine), 1)
        self.assertEqual(sorted(mine[0].accepted), ["a1@example.test", "a2@example.test"])

    def test_mixed_results_per_recipient(self):
        self.rx1.rcpt_replies = {"^bad@": "550 5.1.1 no such user", "^later@": "451 4.3.0 try later"}
        try:
            n = len(self.dsn_rx.messages)
            qid = self.send(["good@example.test", "bad@example.test", "later@example.test"])
            self.events(qid, "Delivery")
            [bounce] = self.events(qid, "Bounce")
            self.assertEqual((bounce["recipient"], bounce["code"]), ("bad@example.test", 550))
            [transient] = self.events(qid, "TransientFailure")
            self.assertEqual(transient["recipient"], "later@example.test")
            self.assertEqual(transient["stage"], "rcpt")
            self.dsn_rx.wait_for(lambda rx: len(rx.messages) > n, what="the DSN")
            self.assertIn(b"Final-Recipient: rfc822; bad@example.test", self.dsn_rx.messages[-1].data)
            self.assertNotIn(b"good@example.test", self.dsn_rx.messages[-1].data.split(b"message/rfc822")[0])
            self.rx1.rcpt_replies = {"^bad@": "550 5.1.1 no such user"}
            # The retry carries only the recipient still pending, and it gets through.
            retried = self.server.wait_records(
                lambda r: r.get("id") == qid and r.get("event") == "Delivery" and r["recipient"] == "later@example.test",
                "the retry", TIMEOUT)
            self.assertEqual(retried[0]["attempt"], 2)
        finally:
            self.rx1.rcpt_replies = {}

    def test_notify_never_and_null_sender_get_no_dsn(self):
        self.rx1.rcpt_replies = {"^nonotify@": "550 5.1.1 no such user"}
        try:
            qid = self.send(["nonotify@example.test"], rcpt_options=["NOTIFY=NEVER"])
            self.events(qid, "Bounce")
            qid2 = self.send(["nonotify@example.test"], sender="")
            self.events(qid2, "Bounce")
            # Settled: the spool forgets both, and no DsnQueued record names them.
            self.server.wait_records(lambda r: r.get("event") == "Bounce" and r.get("id") == qid2)
            self.assertFalse([r for r in self.server.log_records("DsnQueued") if r["for_id"] in (qid, qid2)])
        finally:
            self.rx1.rcpt_replies = {}

class HangAndDrop(DeliveryCase):
    def test_receiver_that_drops_mid_data_gets_a_retry(self):
        self.rx1.drop_after = 10
        n = len(self.rx1.messages)
        try:
            qid = self.send(["drop@example.test"], body="Subject: d\r\n\r\n" + ("x" * 70 + "\r\n") * 80)
            [t] = self.events(qid, "TransientFailure")
            self.assertIn(t["stage"], ("end-of-data", "data"))
        finally:
            self.rx1.drop_after = None
        [d] = self.events(qid, "Delivery")
        self.assertEqual(d["attempt"], 2)
        self.rx1.wait_for(lambda rx: any("drop@example.test" in m.accepted and m.end == "done"
                                         for m in rx.messages[n:]))

    def test_receiver_that_hangs_mid_data_times_out_and_gets_a_retry(self):
        self.rx1.hang_after = 10
        try:
            qid = self.send(["hang@example.test"], body="Subject: h\r\n\r\n" + ("y" * 70 + "\r\n") * 80)
            [t] = self.events(qid, "TransientFailure")
            self.assertEqual(t["stage"], "end-of-data")
            self.assertIn("timed out", t["reply"])
        finally:
            self.rx1.hang_after = None
        [d] = self.events(qid, "Delivery")
        self.assertGreaterEqual(d["attempt"], 2)


class Expiry(DeliveryCase):
    QUEUE = {"max_age": "3s"}

    def test_message_expires_with_a_dsn(self):
        self.rx1.rcpt_replies = {"^stuck@": "451 4.2.0 mailbox busy"}
        self.rx2.rcpt_replies = {"^stuck@": "451 4.2.0 mailbox busy"}
        n = len(self.dsn_rx.messages)
        try:
            qid = self.send(["stuck@example.test"])
            [e] = self.events(qid, "Expiration")
            self.assertGreaterEqual(e["attempts"], 2)
            self.dsn_rx.wait_for(lambda rx: len(rx.messages) > n, what="the DSN")
            self.assertIn(b"Status: 4.4.7", self.dsn_rx.messages[-1].data)
        finally:
            self.rx1.rcpt_replies = self.rx2.rcpt_replies = {}


class Ipv6(unittest.TestCase):
    """An MX host with only an AAAA record: sluice connects over IPv6 (::1)."""

    def test_delivers_to_an_ipv6_only_mx(self):
        rx = Receiver("::1", 0, name="v6.test").start()
        dns = dnsfixture.DnsServer([dnsfixture.mx("v6.test", "mx.v6.test", 10),
                                    dnsfixture.host("mx.v6.test", "::1")]).start()
        server = harness.Sluice(queue={"hold": False}, delivery={"port": rx.port},
                                dns={"nameservers": [dns.nameserver], "timeout": "1s"})
        try:
            server.start()
            self.port, self.server = server.port, server
            qid = DeliveryCase.send(self, ["six@v6.test"])
            [d] = server.wait_records(lambda r: r.get("id") == qid and r.get("event") == "Delivery")
            self.assertEqual(d["remote_ip"], "::1")
            rx.wait_for_messages(1)
            self.assertEqual(rx.messages[0].client, "::1")
        finally:
            server.close()
            rx.stop()
            dns.stop()


class ReuseAfterRestart(unittest.TestCase):
    """Messages spooled while delivery was held are recovered at restart and delivered over one
    reused connection (one connection per site allowed): recovery and connection reuse."""

    def test_recovered_messages_share_one_connection(self):
        rx = Receiver(name="reuse.test").start()
        routes = {"reuse.test": {"host": "127.0.0.1", "port": rx.port}}
        held = harness.Sluice(routes=routes)  # [queue] hold = true: accept only
        try:
            held.start()
            self.port, self.server = held.port, held
            ids = [DeliveryCase.send(self, [f"r{i}@reuse.test"]) for i in range(5)]
            self.assertEqual(held.stop(), 0)
            server = harness.Sluice(directory=held.dir, routes=routes, queue={"hold": False},
                                    shaping={"default": {"connection_limit": 1}})
            server.start()
            self.assertEqual(server.events[-2]["messages"], 5)  # Recovered
            for qid in ids:
                server.wait_records(lambda r, q=qid: r.get("id") == q and r.get("event") == "Delivery")
            self.assertEqual(rx.connections, 1)
            self.assertEqual(len(rx.messages), 5)
            server.stop()
            self.assertEqual(server.spool_ls(), [])  # delivered messages leave the spool
        finally:
            held.close()
            rx.stop()


class Extensions(unittest.TestCase):
    """Receivers with particular extensions, reached through route overrides (no DNS)."""

    def test_tls_and_missing_extensions(self):
        d = harness.tempfile.TemporaryDirectory()
        cert, key = harness.make_tls(d.name)
        tls_rx = Receiver(tls=(cert, key), name="tls.test").start()
        plain_rx = Receiver(eightbitmime=False, smtputf8=False, pipelining=False, name="plain.test").start()
        dsn_rx = Receiver(name="dsn.test", smtputf8=True).start()  # DSNs of SMTPUTF8 mail need it
        server = harness.Sluice(queue={"hold": False, "min_backoff": "1s"},
                                delivery={"source_ip": "127.0.0.5", "helo_name": "out.sluice.test"},
                                routes={"tls.test": {"host": "127.0.0.1", "port": tls_rx.port, "tls": "required"},
                                        "plain.test": {"host": "127.0.0.1", "port": plain_rx.port},
                                        "sender.test": {"host": "127.0.0.1", "port": dsn_rx.port}})
        try:
            server.start()
            self.port = server.port
            self.server = server
            qid = DeliveryCase.send(self, ["t@tls.test"])
            self.server.wait_records(lambda r: r.get("id") == qid and r.get("event") == "Delivery")
            tls_rx.wait_for_messages(1)
            self.assertTrue(tls_rx.messages[0].tls)
            self.assertEqual(tls_rx.messages[0].client, "127.0.0.5")  # bound to the source IP
            self.assertEqual(tls_rx.messages[0].ehlo, "out.sluice.test")
            self.assertEqual(self.server.log_records("Delivery")[0]["site"], f"route:127.0.0.1:{tls_rx.port}")

            # Without PIPELINING: one round trip per command, still delivered.
            qid = DeliveryCase.send(self, ["p@plain.test"])
            self.server.wait_records(lambda r: r.get("id") == qid and r.get("event") == "Delivery")
            plain_rx.wait_for_messages(1)
            self.assertFalse(plain_rx.messages[0].pipelined)

            # An SMTPUTF8 message to a receiver without SMTPUTF8 fails cleanly, with a DSN.
            with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as s:
                s.ehlo("client.test")
                self.assertEqual(s.mail("alice@sender.test", ["SMTPUTF8"])[0], 250)
                self.assertEqual(s.rcpt("j\u00f6rg@plain.test")[0], 250)
                code, text = s.data("Subject: u\r\n\r\nx\r\n".encode())
                qid = text.decode().rsplit(" ", 1)[-1]
            [b] = self.server.wait_records(lambda r: r.get("id") == qid and r.get("event") == "Bounce")
            self.assertEqual((b["code"], b["enhanced"]), (553, "5.6.7"))
            dsn_rx.wait_for_messages(1)

            # An 8BITMIME message to a receiver without 8BITMIME likewise.
            qid = DeliveryCase.send(self, ["e@plain.test"], body="Subject: 8\r\n\r\nd\u00e9j\u00e0\r\n".encode(),
                                    mail_options=["BODY=8BITMIME"])
            [b] = self.server.wait_records(lambda r: r.get("id") == qid and r.get("event") == "Bounce")
            self.assertEqual((b["code"], b["enhanced"]), (554, "5.6.3"))
        finally:
            server.close()
            for rx in (tls_rx, plain_rx, dsn_rx):
                rx.stop()
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
