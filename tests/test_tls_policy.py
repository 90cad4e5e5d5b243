"""End-to-end tests of the receivers' published TLS policies (src/tlspolicy/).

MTA-STS (RFC 8461): the `_mta-sts` TXT records, MX and A records come from a real DNS server
(dnsmasq); the policies are served over HTTPS by this test (Python's http.server with a CA made
here, trusted through [delivery] tls_ca_file). `enforce` refuses an MX host whose certificate
does not name it, and one the policy does not list (deferrals with category tls, the reason in
the log and in the DSN); `testing` delivers and logs what failed; a policy host with a bad
certificate gives no policy; a cached policy is not fetched again while its id is unchanged.

DANE (RFC 7672): Debian's unbound, validating, serves a zone signed here with ldns-signzone
(trust anchor: the zone's own DS) and an unsigned zone beside it; sluice asks it for TLSA records
and trusts them only with the AD bit. A certificate that matches its TLSA record delivers, one
that does not defers with category tls, and TLSA records in the unsigned zone are ignored.
"""
import hashlib
import http.server
import json
import os
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import dnsfixture
import harness
from receiver import Receiver
from test_tls_verify import make_ca, make_cert


class PolicyServer:
    """HTTPS on address:port serving /.well-known/mta-sts.txt by Host header; counts requests."""

    def __init__(self, address, port, cert, policies):
        self.policies = policies  # host -> text
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = self.headers.get("Host", "").split(":")[0]
                outer.requests.append((host, self.path))
                body = outer.policies.get(host)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((address, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def policy(mode, *mx, max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
        mode, "".join(f"mx: {m}\r\n" for m in mx), max_age)


def send(server, sender, rcpt):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=harness.TIMEOUT) as s:
        s.sendmail(sender, [rcpt], f"Subject: {rcpt}\r\n\r\nx\r\n")


def first_result(server, rcpt):
    return server.wait_records(
        lambda r: r.get("event") in ("Delivery", "TransientFailure") and r["recipient"] == rcpt,
        f"the result for {rcpt}")[0]


def sent_to(rx, rcpt):
    """The transactions in which receiver rx got rcpt (in clear or not)."""
    return [t for t in rx.transactions if rcpt in [x.address for x in t.rcpts]]


def deferred(test, server, rcpt, stage, text):
    """rcpt's first attempt deferred with category tls at `stage`, the reply containing text."""
    r = first_result(server, rcpt)
    test.assertEqual(r["event"], "TransientFailure", r)
    test.assertEqual((r["category"], r["stage"]), ("tls", stage), r)
    test.assertIn(text, r["reply"])
    return r


class MtaSts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sluice-sts-")
        d = cls.tmp.name
        ca = make_ca(d)
        port = harness.common_port(("127.0.0.2", "127.0.0.5", "127.0.0.6"))
        https_port = harness.common_port(("127.0.0.5", "127.0.0.6"))
        # One receiver with a certificate for mx.good.test from the trusted CA: right for
        # domains whose MX is mx.good.test, wrong for any other MX name pointing at it.
        cls.rx = Receiver("127.0.0.2", port, name="mx.good.test",
                          tls=make_cert(d, "mx.good.test", ca)).start()
        cls.dsn_rx = Receiver(name="dsn.test").start()
        names = ["mta-sts.enforce.test", "mta-sts.wrongname.test", "mta-sts.unlisted.test",
                 "mta-sts.testing.test", "mta-sts.relaxed.test"]
        cert = cls.multi_cert(d, names, ca)  # one certificate naming every policy host
        cls.policies = PolicyServer("127.0.0.5", https_port, cert, {
            "mta-sts.enforce.test": policy("enforce", "mx.good.test"),
            "mta-sts.wrongname.test": policy("enforce", "*.wrongname.test"),
            "mta-sts.unlisted.test": policy("enforce", "mx.elsewhere.test", "*.other.test"),
            "mta-sts.testing.test": policy("testing", "mx.testing.test"),
            "mta-sts.relaxed.test": policy("enforce", "mx.relaxed.test"),
        }).start()
        # A policy host whose certificate names another host: its policy must not be used.
        cls.impostor = PolicyServer("127.0.0.6", https_port, make_cert(d, "impostor.test", ca), {
            "mta-sts.badhost.test": policy("enforce", "mx.nowhere.test"),
        }).start()
        zone = []
        for domain, mx in (("enforce.test", "mx.good.test"), ("wrongname.test", "mx.wrongname.test"),
                           ("unlisted.test", "mx.good.test"), ("testing.test", "mx.testing.test"),
                           ("badhost.test", "mx.good.test"), ("plain.test", "mx.good.test"),
                           ("strict.test", "mx.strict.test"), ("relaxed.test", "mx.relaxed.test")):
            zone.append(dnsfixture.mx(domain, mx, 10))
            if domain not in ("plain.test", "strict.test"):
                zone.append(dnsfixture.txt("_mta-sts." + domain, "v=STSv1; id=20261130a;"))
                zone.append(dnsfixture.host("mta-sts." + domain,
                                            "127.0.0.6" if domain == "badhost.test" else "127.0.0.5"))
        for mx in ("mx.good.test", "mx.wrongname.test", "mx.testing.test", "mx.strict.test",
                   "mx.relaxed.test", "aspmx.l.google.com"):
            zone.append(dnsfixture.host(mx, "127.0.0.2"))
        # A Google Workspace domain: provider gmail (etc/providers.toml) by its MX host.
        zone.append(dnsfixture.mx("workspace.test", "aspmx.l.google.com", 10))
        cls.dns = dnsfixture.DnsServer(zone, zones=("test", "google.com")).start()
        cls.server = harness.Sluice(
            queue={"hold": False, "min_backoff": "1s", "max_backoff": "2s", "max_age": "6s"},
            delivery={"port": port, "tls_ca_file": ca[1], "connect_timeout": "2s"},
            dns={"nameservers": [cls.dns.nameserver], "timeout": "1s"},
            routes={"dsn.test": {"host": "127.0.0.1", "port": cls.dsn_rx.port}},
            extra=f"[tls]\nmta_sts = true\nmta_sts_port = {https_port}\nmta_sts_timeout = \"5s\"\n"
                  "[tls.domain]\n\"strict.test\" = \"verify\"\n\"relaxed.test\" = \"opportunistic\"\n"
                  "[tls.provider]\ngmail = \"verify\"\n")
        cls.server.start()

    @staticmethod
    def multi_cert(d, names, ca):
        key, cert, csr = (os.path.join(d, "multi." + x) for x in ("key", "pem", "csr"))
        ext = os.path.join(d, "multi.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=policies",
                        "-keyout", key, "-out", csr], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0],
                        "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert],
                       check=True, capture_output=True)
        return cert, key

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        for s in (cls.policies, cls.impostor):
            s.stop()
        cls.dns.stop()
        cls.rx.stop()
        cls.dsn_rx.stop()
        cls.tmp.cleanup()

    def test_enforce_delivers_over_verified_tls_and_fetches_the_policy_once(self):
        send(self.server, "", "a@enforce.test")
        r = first_result(self.server, "a@enforce.test")
        self.assertEqual(r["event"], "Delivery", r)
        self.assertIn("verified (mta-sts)", r["tls"])
        self.assertTrue(r["site"].endswith("[mta-sts]"), r["site"])
        [p] = self.server.wait_records(
            lambda x: x.get("event") == "MtaStsPolicy" and x["domain"] == "enforce.test",
            "the policy record")
        self.assertEqual((p["result"], p["mode"], p["mx"], p["max_age"]),
                         ("fetched", "enforce", "mx.good.test", 86400))
        send(self.server, "", "b@enforce.test")
        self.assertEqual(first_result(self.server, "b@enforce.test")["event"], "Delivery")
        fetched = [h for h, _ in self.policies.requests if h == "mta-sts.enforce.test"]
        self.assertEqual(len(fetched), 1, "the cached policy is used while its id is the same")
        # The TXT record was asked for with the MX records, and cached with them (TTL 60 s).
        self.assertEqual(len(self.dns.queries("_mta-sts.enforce.test", "TXT")), 1)

    def test_zz_a_restart_keeps_the_fetched_policies(self):
        # Runs last (name order): it restarts the server on the same spool. The policy of
        # enforce.test was fetched before; afterwards nothing is fetched again while its id
        # stays, and it is still enforced.
        send(self.server, "", "k@enforce.test")
        self.assertEqual(first_result(self.server, "k@enforce.test")["event"], "Delivery")
        before = len(self.policies.requests)
        self.assertEqual(self.server.stop(), 0)
        self.server.proc.stderr.close()
        self.server.start()
        send(self.server, "", "l@enforce.test")
        r = first_result(self.server, "l@enforce.test")
        self.assertEqual(r["event"], "Delivery", r)
        self.assertIn("verified (mta-sts)", r["tls"])
        self.assertEqual(len(self.policies.requests), before, "kept across the restart")

    def test_enforce_refuses_a_certificate_that_does_not_name_the_mx_host(self):
        send(self.server, "s@dsn.test", "c@wrongname.test")
        r = deferred(self, self.server, "c@wrongname.test", "starttls", "(mta-sts)")
        self.assertIn("mismatch", r["reply"].lower())
        self.assertFalse(sent_to(self.rx, "c@wrongname.test"))
        # The DSN when it expires says why.
        self.dsn_rx.wait_for(
            lambda rx: any(b"c@wrongname.test" in m.data for m in rx.messages), what="the DSN")
        [dsn] = [m for m in self.dsn_rx.messages if b"c@wrongname.test" in m.data]
        self.assertIn(b"mta-sts", dsn.data)
        self.assertIn(b"4.7.5", dsn.data)
        # sluice report names the domain, the reply and the way out.
        out = subprocess.run([harness.BIN, "report", self.server.log_path, "--json"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        recs = {(r["kind"], r["provider"]): r for r in json.loads(out.stdout)["recommendations"]}
        fix = recs[("fix-tls", "wrongname.test")]
        self.assertIn('[tls.domain] "wrongname.test" = "opportunistic"', fix["action"])
        self.assertIn("hostname mismatch", fix["evidence"])
        self.assertNotIn(("fix-tls", "enforce.test"), recs)

    def test_enforce_refuses_mx_hosts_the_policy_does_not_list(self):
        send(self.server, "", "d@unlisted.test")
        r = deferred(self, self.server, "d@unlisted.test", "dns", "MTA-STS policy")
        self.assertIn("mx.elsewhere.test", r["reply"])
        self.assertFalse(sent_to(self.rx, "d@unlisted.test"))

    def test_testing_mode_delivers_and_logs_the_failure(self):
        send(self.server, "", "e@testing.test")
        r = first_result(self.server, "e@testing.test")
        self.assertEqual(r["event"], "Delivery", r)
        self.assertIn("unverified", r["tls"])
        self.assertIn("mismatch", r["tls"].lower())
        self.assertIn("(mta-sts testing)", r["tls"])

    def test_a_policy_host_with_a_wrong_certificate_gives_no_policy(self):
        send(self.server, "", "f@badhost.test")
        [p] = self.server.wait_records(
            lambda x: x.get("event") == "MtaStsPolicy" and x["domain"] == "badhost.test",
            "the policy record")
        self.assertEqual(p["result"], "none", p)
        self.assertIn("certificate", p["why"])
        self.assertEqual(self.impostor.requests, [], "nothing is asked of an unverified host")
        r = first_result(self.server, "f@badhost.test")
        self.assertEqual(r["event"], "Delivery", r)  # as if no policy (section 5)

    def test_the_operators_policy_for_a_domain_wins(self):
        # [tls.domain] "strict.test" = "verify": no policy published, verified all the same.
        send(self.server, "", "h@strict.test")
        r = deferred(self, self.server, "h@strict.test", "starttls", "(domain)")
        self.assertTrue(r["site"].endswith("[domain]"), r["site"])
        # [tls.domain] "relaxed.test" = "opportunistic" over its published enforce policy.
        send(self.server, "", "i@relaxed.test")
        r = first_result(self.server, "i@relaxed.test")
        self.assertEqual(r["event"], "Delivery", r)

    def test_a_providers_policy_covers_its_whole_site(self):
        # [tls.provider] gmail = "verify": mx.good.test's certificate does not name aspmx.
        send(self.server, "", "j@workspace.test")
        r = deferred(self, self.server, "j@workspace.test", "starttls", "(provider)")
        self.assertEqual((r["provider"], r["site"]), ("gmail", "aspmx.l.google.com"), r)
        self.assertFalse(sent_to(self.rx, "j@workspace.test"))

    def test_a_domain_without_a_policy_is_unchanged(self):
        send(self.server, "", "g@plain.test")
        r = first_result(self.server, "g@plain.test")
        self.assertEqual(r["event"], "Delivery", r)
        self.assertEqual(r["site"], "mx.good.test")
        self.assertIn("unverified", r["tls"])


def tool(name):
    return shutil.which(name) or os.path.join("/usr/sbin", name)


class Dane(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sluice-dane-")
        d = cls.tmp.name
        port = harness.common_port(("127.0.0.2", "127.0.0.3"))
        good, bad = make_cert(d, "mx.dane.test"), make_cert(d, "mx2.dane.test")
        cls.rx_good = Receiver("127.0.0.2", port, name="mx.dane.test", tls=good).start()
        cls.rx_bad = Receiver("127.0.0.3", port, name="mx2.dane.test", tls=bad).start()
        spki = subprocess.run(
            f"openssl x509 -in {good[0]} -noout -pubkey | openssl pkey -pubin -outform DER",
            shell=True, check=True, capture_output=True).stdout
        digest = hashlib.sha256(spki).hexdigest()
        wrong = hashlib.sha256(b"not this key").hexdigest()
        forged = hashlib.sha256(b"signed, then changed").hexdigest()
        with open(os.path.join(d, "dane.test.zone"), "w") as f:
            f.write(f"""$ORIGIN dane.test.
$TTL 300
@ IN SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 300
@ IN NS ns.dane.test.
ns IN A 127.0.0.1
good IN MX 10 mx.dane.test.
bad IN MX 10 mx2.dane.test.
bogus IN MX 10 mx3.dane.test.
mx IN A 127.0.0.2
mx2 IN A 127.0.0.3
mx3 IN A 127.0.0.3
_{port}._tcp.mx IN TLSA 3 1 1 {digest}
_{port}._tcp.mx2 IN TLSA 3 1 1 {wrong}
_{port}._tcp.mx3 IN TLSA 3 1 1 {forged}
""")
        with open(os.path.join(d, "plain.test.zone"), "w") as f:
            f.write(f"""$ORIGIN plain.test.
$TTL 300
@ IN SOA ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 300
@ IN NS ns.plain.test.
ns IN A 127.0.0.1
@ IN MX 10 mx.plain.test.
mx IN A 127.0.0.3
_{port}._tcp.mx IN TLSA 3 1 1 {wrong}
""")
        run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True, text=True)
        ksk = run(tool("ldns-keygen"), "-a", "ECDSAP256SHA256", "-k", "dane.test").stdout.strip()
        zsk = run(tool("ldns-keygen"), "-a", "ECDSAP256SHA256", "dane.test").stdout.strip()
        run(tool("ldns-signzone"), "-n", "dane.test.zone", ksk, zsk)
        # mx3's TLSA record changed after signing: its signature no longer matches (bogus), and
        # the validating resolver answers SERVFAIL.
        signed = os.path.join(d, "dane.test.zone.signed")
        with open(signed) as f:
            text = f.read()
        assert forged in text
        with open(signed, "w") as f:
            f.write(text.replace(forged, digest))
        cls.dns_port = harness.free_port()
        conf = os.path.join(d, "unbound.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
  interface: 127.0.0.1
  port: {cls.dns_port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: ""
  use-syslog: no
  logfile: "{d}/unbound.log"
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "{d}/{ksk}.ds"
  local-zone: "test." nodefault
auth-zone:
  name: "dane.test"
  zonefile: "{d}/dane.test.zone.signed"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
auth-zone:
  name: "plain.test"
  zonefile: "{d}/plain.test.zone"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
""")
        cls.unbound = subprocess.Popen([tool("unbound"), "-d", "-c", conf],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + harness.TIMEOUT
        while True:  # until it answers
            try:
                dnsfixture.query("good.dane.test", "MX", cls.dns_port)
                break
            except Exception:
                if time.monotonic() > deadline or cls.unbound.poll() is not None:
                    raise AssertionError("unbound did not start: " +
                                         (cls.unbound.stderr.read().decode() if cls.unbound.poll() is not None else ""))
                time.sleep(0.1)
        cls.server = harness.Sluice(
            queue={"hold": False, "min_backoff": "30s", "max_backoff": "60s"},
            delivery={"port": port, "connect_timeout": "2s"},
            dns={"nameservers": [f"127.0.0.1:{cls.dns_port}"], "timeout": "2s"},
            extra="[tls]\nmta_sts = false\ndane = true\n")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.unbound.terminate()
        cls.unbound.wait(timeout=harness.TIMEOUT)
        cls.unbound.stderr.close()
        cls.rx_good.stop()
        cls.rx_bad.stop()
        cls.tmp.cleanup()

    def test_a_certificate_matching_its_validated_tlsa_record_delivers(self):
        send(self.server, "", "a@good.dane.test")
        r = first_result(self.server, "a@good.dane.test")
        self.assertEqual(r["event"], "Delivery", r)
        self.assertIn("dane-verified (dane)", r["tls"])
        [p] = self.server.wait_records(
            lambda x: x.get("event") == "DanePolicy" and x["domain"] == "good.dane.test",
            "the DANE record")
        self.assertTrue(p["mx_secure"], p)

    def test_a_certificate_matching_no_tlsa_record_defers_with_category_tls(self):
        send(self.server, "", "b@bad.dane.test")
        deferred(self, self.server, "b@bad.dane.test", "starttls", "DANE verification failed")
        self.assertFalse(sent_to(self.rx_bad, "b@bad.dane.test"))

    def test_a_bogus_tlsa_answer_defers_rather_than_delivering_without_dane(self):
        send(self.server, "", "d@bogus.dane.test")
        deferred(self, self.server, "d@bogus.dane.test", "dns", "TLSA lookup failed")
        self.assertFalse(sent_to(self.rx_bad, "d@bogus.dane.test"))

    def test_tlsa_records_the_resolver_did_not_validate_are_ignored(self):
        send(self.server, "", "c@plain.test")
        r = first_result(self.server, "c@plain.test")
        self.assertEqual(r["event"], "Delivery", r)
        self.assertNotIn("dane", r["tls"])


if __name__ == "__main__":
    unittest.main()
