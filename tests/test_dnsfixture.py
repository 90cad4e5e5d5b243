"""Self-test of tests/dnsfixture.py: the dnsmasq it starts answers each case the delivery tests
need, checked with the fixture's own DNS client. Needs dnsmasq (dnsmasq-base), not sluice.

Run by hand:
    cd tests && python3 -m unittest -v test_dnsfixture
"""
import socket
import unittest

from dnsfixture import (NOERROR, NXDOMAIN, REFUSED, SERVFAIL, DnsServer, cname, host, mx,
                        null_mx, query, refused, servfail, timeout)

RECORDS = [
    # given lowest preference first: dnsmasq answers them in the reverse order of its config
    mx("example.test", "mx1.example.test", 10),
    mx("example.test", "mx2.example.test", 20),
    mx("example.test", "mx3.example.test", 20),
    host("mx1.example.test", "127.0.0.2"),
    host("mx2.example.test", "127.0.0.3", "::1"),
    host("mx3.example.test", "127.0.0.4", "127.0.0.5", ttl=300),
    host("fallback.test", "127.0.0.6"),       # no MX: mail goes to its A record
    host("v6only.test", "::1"),
    null_mx("nullmx.test"),
    cname("alias.test", "mx1.example.test"),
    servfail("servfail.test"),
    refused("refused.test"),
    timeout("slow.test"),
]


class Answers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer(RECORDS, ttl=42).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def ask(self, name, qtype, rcode=NOERROR, **kw):
        r = self.dns.query(name, qtype, **kw)
        self.assertEqual(r.rcode, rcode, f"{name} {qtype}: {r}")
        return r

    def test_mx_preferences(self):
        r = self.ask("example.test", "MX")
        self.assertEqual([rr.value for rr in r.answers],  # the answer's own order, not sorted
                         [(20, "mx3.example.test"), (20, "mx2.example.test"),
                          (10, "mx1.example.test")])
        self.assertEqual({rr.ttl for rr in r.answers}, {42})
        self.assertTrue(r.flags & 0x0400, "authoritative answer (AA) for local data")

    def test_mx_lookup_is_case_insensitive(self):
        self.assertEqual(len(self.ask("EXAMPLE.Test", "MX").answers), 3)

    def test_a_records_and_ttl(self):
        self.assertEqual([(rr.value, rr.ttl) for rr in self.ask("mx1.example.test", "A").answers],
                         [("127.0.0.2", 42)])
        r = self.ask("mx3.example.test", "A")
        self.assertEqual(sorted(rr.value for rr in r.answers), ["127.0.0.4", "127.0.0.5"])
        self.assertEqual({rr.ttl for rr in r.answers}, {300})

    def test_aaaa(self):
        self.assertEqual([rr.value for rr in self.ask("mx2.example.test", "AAAA").answers], ["::1"])
        self.assertEqual([rr.value for rr in self.ask("v6only.test", "AAAA").answers], ["::1"])
        self.assertEqual(self.ask("v6only.test", "A").answers, [])  # NODATA
        self.assertEqual(self.ask("mx1.example.test", "AAAA").answers, [])

    def test_no_mx_falls_back_to_a(self):
        r = self.ask("fallback.test", "MX")  # NODATA: NOERROR and no answer, not NXDOMAIN
        self.assertEqual((r.answers, r.authority), ([], []))
        self.assertEqual([rr.value for rr in self.ask("fallback.test", "A").answers],
                         ["127.0.0.6"])

    def test_null_mx(self):
        r = self.ask("nullmx.test", "MX")
        self.assertEqual(len(r.answers), 1)
        self.assertEqual(r.answers[0].value, (0, "."))
        self.assertEqual(r.answers[0].rdata, b"\x00\x00\x00")  # preference 0, the root name

    def test_cname(self):
        r = self.ask("alias.test", "A")
        self.assertEqual([(rr.type, rr.value) for rr in r.answers],
                         [("CNAME", "mx1.example.test"), ("A", "127.0.0.2")])

    def test_nxdomain(self):
        for name in ("nope.test", "nope.example.test", "deep.nope.test"):
            for qtype in ("MX", "A", "AAAA"):
                self.assertEqual(self.ask(name, qtype, NXDOMAIN).answers, [])

    def test_outside_the_zones_refused(self):
        self.ask("example.com", "MX", REFUSED)

    def test_servfail(self):
        for name in ("servfail.test", "mx.servfail.test"):
            self.ask(name, "MX", SERVFAIL)
            self.ask(name, "A", SERVFAIL)
        self.ask("servfail.test", "MX", SERVFAIL, tcp=True)

    def test_refused(self):
        self.ask("refused.test", "MX", REFUSED)
        self.ask("a.refused.test", "A", REFUSED, tcp=True)

    def test_timeout(self):
        with self.assertRaises(socket.timeout):  # a bounded wait for what must not come
            self.dns.query("slow.test", "MX", timeout=0.3)
        with self.assertRaises(socket.timeout):
            self.dns.query("x.slow.test", "A", tcp=True, timeout=0.3)

    def test_tcp(self):
        r = self.ask("example.test", "MX", tcp=True)
        self.assertEqual(sorted(rr.value for rr in r.answers),
                         [(10, "mx1.example.test"), (20, "mx2.example.test"),
                          (20, "mx3.example.test")])

    def test_queries_are_logged(self):
        self.assertEqual(self.dns.queries("counted.example.test"), [])
        for _ in range(2):
            self.ask("counted.example.test", "MX", NXDOMAIN)
        self.ask("counted.example.test", "A", NXDOMAIN)
        got = self.dns.wait_for_queries(2, "counted.example.test", "MX")
        self.assertEqual(len(got), 2)
        self.assertEqual(got[0].client, "127.0.0.1")
        self.assertEqual(len(self.dns.wait_for_queries(3, "counted.example.test")), 3)


class Lifecycle(unittest.TestCase):
    def test_two_servers_and_stop(self):
        with DnsServer([host("a.test", "127.0.0.7")]) as one, \
                DnsServer([host("a.test", "127.0.0.8")], zones=["test", "example"],
                          address="127.0.0.2") as two:
            self.assertNotEqual(one.nameserver, two.nameserver)
            self.assertEqual(two.nameserver, f"127.0.0.2:{two.port}")
            self.assertEqual(one.query("a.test", "A").answers[0].value, "127.0.0.7")
            self.assertEqual(two.query("a.test", "A").answers[0].value, "127.0.0.8")
            self.assertEqual(two.query("b.example", "A").rcode, NXDOMAIN)
            self.assertEqual(one.query("b.example", "A").rcode, REFUSED)
            port = one.port
        self.assertIsNotNone(one.proc.poll())
        self.assertIsNotNone(two.proc.poll())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))  # the port is free again

    def test_bad_config_fails_fast(self):
        with self.assertRaisesRegex(AssertionError, "dnsmasq did not start"):
            DnsServer(["no-such-option"]).start()


if __name__ == "__main__":
    unittest.main()
