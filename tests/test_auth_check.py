"""End-to-end tests of `sluice auth-check DOMAIN` against a real DNS server (dnsmasq, started by
the test) serving good and broken SPF, DKIM, DMARC and reverse DNS: a good domain passes every
check; each problem of a broken one is named with the record that fixes it."""
import json
import os
import subprocess
import tempfile
import unittest

import dnsfixture
import harness
from test_dkim import make_key


def sources(*entries):
    return "".join(f'[source.{name}]\naddress = "{address}"\nehlo = "{ehlo}"\n\n'
                   for name, address, ehlo in entries)


class AuthCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sluice-auth-")
        d = cls.tmp.name
        cls.good_key, good_txt = make_key(d, "good", "rsa")
        cls.ed_key, ed_txt = make_key(d, "good-ed", "ed25519")
        cls.broken_key, _ = make_key(d, "broken", "ed25519")
        _, other_txt = make_key(d, "other", "ed25519")  # published in place of broken's key
        records = [
            dnsfixture.txt("good.test", "v=spf1 ip4:127.0.0.2 ip4:192.0.2.0/24 -all"),
            dnsfixture.txt("s1._domainkey.good.test", good_txt),
            dnsfixture.txt("ed1._domainkey.good.test", ed_txt),
            dnsfixture.txt("_dmarc.good.test", "v=DMARC1; p=reject; rua=mailto:d@good.test"),
            dnsfixture.host("mta1.good.test", "127.0.0.2"),  # A and PTR
            dnsfixture.txt("broken.test", "v=spf1 ip4:192.0.2.1 ~all"),
            dnsfixture.txt("s1._domainkey.broken.test", other_txt),
            dnsfixture.host("mta4.broken.test", "127.0.0.4"),
        ]
        flat = "v=spf1"
        for i in range(11):
            records.append(dnsfixture.txt(f"i{i}.test", f"v=spf1 ip4:10.0.0.{i} -all"))
            flat += f" include:i{i}.test"
        records.append(dnsfixture.txt("flat.test", flat + " -all"))
        cls.dns = dnsfixture.DnsServer(records, zones=("test", "in-addr.arpa")).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.tmp.cleanup()

    def config(self, name, body):
        path = os.path.join(self.tmp.name, name + ".toml")
        with open(path, "w") as f:
            f.write(f'[dns]\nnameservers = ["{self.dns.nameserver}"]\ntimeout = "2s"\n\n' + body)
        return path

    def check(self, domain, config):
        out = subprocess.run([harness.BIN, "auth-check", domain, "--config", config, "--json"],
                             capture_output=True, text=True, timeout=60)
        doc = json.loads(out.stdout)
        return out.returncode, {(f["check"], f["subject"]): f for f in doc["findings"]}, doc

    def test_a_good_domain_passes_every_check(self):
        config = self.config("good", sources(("ip1", "127.0.0.2", "mta1.good.test")) +
                             f'[dkim."good.test"]\nselector = "s1"\nkey = "{self.good_key}"\n'
                             f'also = [{{ selector = "ed1", key = "{self.ed_key}" }}]\n')
        rc, found, doc = self.check("good.test", config)
        self.assertEqual(rc, 0, doc)
        self.assertEqual((doc["problems"], doc["warnings"]), (0, 0), doc)
        self.assertIn("pass (ip4:127.0.0.2)", found[("spf", "source ip1 (127.0.0.2)")]["message"])
        self.assertIn("matches", found[("dkim", "selector s1 (d=good.test)")]["message"])
        self.assertIn("ed25519", found[("dkim", "selector ed1 (d=good.test)")]["message"])
        self.assertIn("p=reject", found[("dmarc", "good.test")]["message"])
        self.assertIn("forward-confirmed", found[("fcrdns", "source ip1 (127.0.0.2)")]["message"])
        # A subdomain sender: signed by the parent's key, relaxed alignment holds.
        text = subprocess.run([harness.BIN, "auth-check", "news.good.test", "--config", config],
                              capture_output=True, text=True, timeout=60).stdout
        self.assertIn("DKIM d=good.test aligns with From news.good.test", text)

    def test_each_problem_is_named_with_its_fix(self):
        config = self.config("broken", sources(("ip3", "127.0.0.3", "mta3.broken.test"),
                                               ("ip4", "127.0.0.4", "wrong.broken.test")) +
                             f'[dkim."broken.test"]\nselector = "s1"\nkey = "{self.broken_key}"\n')
        rc, found, doc = self.check("broken.test", config)
        self.assertEqual(rc, 1)
        spf = found[("spf", "source ip3 (127.0.0.3)")]
        self.assertEqual(spf["status"], "problem")
        self.assertIn("softfail", spf["message"])
        self.assertIn('"v=spf1 ip4:192.0.2.1 ip4:127.0.0.3 ~all"', spf["fix"])
        dkim = found[("dkim", "selector s1 (d=broken.test)")]
        self.assertIn("not the configured key", dkim["message"])
        self.assertIn("publish TXT s1._domainkey.broken.test \"v=DKIM1; k=ed25519; p=", dkim["fix"])
        dmarc = found[("dmarc", "broken.test")]
        self.assertIn("no DMARC record", dmarc["message"])
        self.assertIn('"v=DMARC1; p=none; rua=mailto:dmarc-reports@broken.test"', dmarc["fix"])
        no_ptr = found[("fcrdns", "source ip3 (127.0.0.3)")]
        self.assertIn("no PTR record for 127.0.0.3", no_ptr["message"])
        self.assertIn("PTR 127.0.0.3 → mta3.broken.test", no_ptr["fix"])
        wrong = found[("fcrdns", "source ip4 (127.0.0.4)")]
        self.assertIn("EHLO wrong.broken.test is not", wrong["message"])
        self.assertIn('ehlo = "mta4.broken.test"', wrong["fix"])

    def test_lookup_limit_missing_key_and_no_record(self):
        config = self.config("flat", sources(("ip1", "127.0.0.2", "mta1.good.test")))
        rc, found, doc = self.check("flat.test", config)
        self.assertEqual(rc, 1)
        spf = found[("spf", "source ip1 (127.0.0.2)")]
        self.assertIn("permerror", spf["message"])
        self.assertIn("more than 10", spf["message"])
        self.assertIn("no DKIM key is configured", found[("dkim", "flat.test")]["message"])
        rc, found, doc = self.check("nothing.test", config)
        self.assertIn('"v=spf1 ip4:127.0.0.2 -all"', found[("spf", "source ip1 (127.0.0.2)")]["fix"])


if __name__ == "__main__":
    unittest.main()
