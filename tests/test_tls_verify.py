"""End-to-end tests of outbound TLS that verifies (`tls = "verify"`): the receiver's certificate
must chain to a trusted CA ([delivery] tls_ca_file, a CA made by the test) and name the MX host.
A certificate for another name, or one no trusted CA signed, is a deferral with category tls —
never a delivery in the clear; a route that stays opportunistic still delivers to the
self-signed host. MX hosts come from a real DNS server (dnsmasq) started by the test.
"""
import os
import subprocess
import tempfile
import unittest

import dnsfixture
import harness
from receiver import Receiver


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d):
    key, cert = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sluice test CA",
            "-keyout", key, "-out", cert)
    return key, cert


def make_cert(d, name, ca=None):
    """A certificate for `name` (in its SAN), signed by ca=(key, cert) or self-signed."""
    key, cert = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{name}\n")
    if ca is None:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                "-keyout", key, "-out", cert, "-addext", f"subjectAltName=DNS:{name}")
    else:
        csr = os.path.join(d, name + ".csr")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", key,
                "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
                "-days", "2", "-extfile", ext, "-out", cert)
    return cert, key


class VerifyingTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sluice-tls-")
        d = cls.tmp.name
        ca = make_ca(d)
        port = harness.common_port(("127.0.0.2", "127.0.0.3"))
        cls.signed = Receiver("127.0.0.2", port, name="mx.good.test",
                              tls=make_cert(d, "mx.good.test", ca)).start()
        cls.selfsigned = Receiver("127.0.0.3", port, name="mx.self.test",
                                  tls=make_cert(d, "mx.self.test")).start()
        zone = [dnsfixture.mx("good.test", "mx.good.test", 10),
                dnsfixture.host("mx.good.test", "127.0.0.2"),
                dnsfixture.mx("wrongname.test", "mx.wrongname.test", 10),
                dnsfixture.host("mx.wrongname.test", "127.0.0.2"),  # presents mx.good.test's
                dnsfixture.mx("self.test", "mx.self.test", 10),
                dnsfixture.host("mx.self.test", "127.0.0.3")]
        cls.dns = dnsfixture.DnsServer(zone).start()
        cls.server = harness.Sluice(
            queue={"hold": False, "min_backoff": "30s", "max_backoff": "60s"},
            delivery={"port": port, "tls": "verify", "tls_ca_file": ca[1], "connect_timeout": "2s"},
            dns={"nameservers": [cls.dns.nameserver], "timeout": "1s"},
            routes={"opp.test": {"host": "127.0.0.3", "port": port, "tls": "opportunistic"}})
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.dns.stop()
        cls.signed.stop()
        cls.selfsigned.stop()
        cls.tmp.cleanup()

    def send(self, rcpt):
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=harness.TIMEOUT) as s:
            s.sendmail("", [rcpt], f"Subject: {rcpt}\r\n\r\nx\r\n")

    def result(self, rcpt):
        return self.server.wait_records(
            lambda r: r.get("event") in ("Delivery", "TransientFailure") and r["recipient"] == rcpt,
            f"the result for {rcpt}")[0]

    def test_a_certificate_from_the_trusted_ca_for_the_mx_name_delivers(self):
        self.send("a@good.test")
        r = self.result("a@good.test")
        self.assertEqual(r["event"], "Delivery", r)
        [txn] = [t for t in self.signed.transactions if "a@good.test" in t.accepted]
        self.assertTrue(txn.tls)

    def test_another_name_or_an_unknown_issuer_defers_with_category_tls(self):
        for rcpt, why in (("b@wrongname.test", "mismatch"), ("c@self.test", "self")):
            self.send(rcpt)
            r = self.result(rcpt)
            self.assertEqual(r["event"], "TransientFailure", r)
            self.assertEqual((r["category"], r["stage"]), ("tls", "starttls"), r)
            self.assertIn("TLS certificate verification failed", r["reply"])
            self.assertIn(why, r["reply"].lower())
            # Never sent in the clear instead.
            for rx in (self.signed, self.selfsigned):
                self.assertFalse([t for t in rx.transactions if rcpt in [x.address for x in t.rcpts]])

    def test_an_opportunistic_route_still_delivers_to_a_self_signed_host(self):
        self.send("d@opp.test")
        r = self.result("d@opp.test")
        self.assertEqual(r["event"], "Delivery", r)


if __name__ == "__main__":
    unittest.main()
