"""End-to-end test of `sluice report`: a simulator run with four receivers, each pushing back in
its own way, then the report on that run's log.

The simulated situation (MX hosts found through a real DNS server, providers named by a
providers file of the test's own, with postmaster pages):
  - gmail allows 2 connections per IP (its known 421 text), and gets a 300-message burst tagged
    campaign "spring": the report must recommend the learned limit, and spreading the campaign;
  - yahoo accepts 15 messages a second and refuses faster ones (its rate text), and refuses
    mail from an unauthenticated sender domain for good: lower the rate; fix authentication for
    that domain, and only that one;
  - microsoft blocks the sending IP with its reputation text: suspended, contact the postmaster
    (its page from the providers file);
  - a greylisting receiver: deferred once, then delivered — nothing to do.
Waits are for log records, bounded.
"""
import collections
import json
import os
import smtplib
import subprocess
import unittest

import dnsfixture
import harness
from test_sim import Sim

TIMEOUT = 120
HOSTS = {"gmail": "127.0.0.10", "yahoo": "127.0.0.11", "microsoft": "127.0.0.12",
         "grey": "127.0.0.13"}
PROVIDERS = """
[[provider]]
name = "gmail"
mx = ["*.gmail.test"]
postmaster = "https://postmaster.gmail.test/"

[[provider]]
name = "yahoo"
mx = ["*.yahoo.test"]
postmaster = "https://senders.yahoo.test/"

[[provider]]
name = "microsoft"
mx = ["*.outlook.test"]
postmaster = "https://sendersupport.outlook.test/pm/"
"""
DOMAINS = {"gmail": "gmail.test", "yahoo": "yahoo.test", "microsoft": "outlook.test",
           "grey": "grey.test"}
MX = {"gmail": "mx.gmail.test", "yahoo": "mx.yahoo.test", "microsoft": "mx.outlook.test",
      "grey": "mx.grey.test"}


def inject(port, messages):
    """messages: (sender, recipient, extra header lines) over one SMTP session."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        for n, (sender, rcpt, headers) in enumerate(messages):
            refused = s.sendmail(sender, [rcpt], f"{headers}Subject: {n}\r\n\r\nbody {n}\r\n")
            assert refused == {}, refused


class ReportOnASimulatedRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        port = harness.common_port(tuple(HOSTS.values()))
        cls.sim = Sim({
            "gmail": {"host": HOSTS["gmail"], "port": port, "connection_limit": 2,
                      "tarpit": "20ms", "limit_stage": "banner",
                      "limit_reply": "421 4.7.0 Try again later, closing connection. (EHLO) - gsmtp"},
            "yahoo": {"host": HOSTS["yahoo"], "port": port, "message_rate": "15/s",
                      "rate_reply": "451 4.7.1 Our system has detected an unusual rate of "
                                    "unsolicited mail originating from your IP address",
                      "hard_bounce_pattern": "^auth",
                      "hard_bounce_reply": "550 5.7.26 This mail is unauthenticated, which "
                                           "poses a security risk to the sender and has been blocked."},
            "microsoft": {"host": HOSTS["microsoft"], "port": port, "blocked_ips": ["127.0.0.1"],
                          "block_reply": "421 4.7.0 [TS01] Messages from this IP temporarily "
                                         "deferred due to unexpected volume or user complaints"},
            "grey": {"host": HOSTS["grey"], "port": port, "greylist": "1s"},
        })
        zone = []
        for name, domain in DOMAINS.items():
            zone += [dnsfixture.mx(domain, MX[name], 10), dnsfixture.host(MX[name], HOSTS[name])]
        cls.dns = dnsfixture.DnsServer(zone, ttl=300).start()
        def sluice(hold, directory=None):
            return harness.Sluice(
                directory=directory,
                queue={"hold": hold, "min_backoff": "1s", "max_backoff": "2s"},
                delivery={"port": port, "connect_timeout": "2s"},
                dns={"nameservers": [cls.dns.nameserver], "timeout": "1s",
                     "providers": cls.providers_file()},
                shaping={"default": {"connection_limit": 10}, "greylist_retry": "2s"})
        cls.server = sluice(hold=True)
        cls.server.start()
        messages = [("news@shop.test", f"u{i}@gmail.test", "X-Campaign: spring\r\n")
                    for i in range(300)]
        messages += [("news@shop.test", f"u{i}@yahoo.test", "") for i in range(200)]
        messages += [("alerts@unsigned.test", f"auth{i}@yahoo.test", "") for i in range(15)]
        messages += [("news@shop.test", f"u{i}@outlook.test", "") for i in range(30)]
        messages += [("news@shop.test", f"u{i}@grey.test", "") for i in range(20)]
        inject(cls.server.port, messages)
        # Deliver it all at once: a restart with delivery on (a deep queue, as after a burst).
        assert cls.server.stop() == 0
        cls.held = cls.server  # owns the directory
        cls.server = sluice(hold=False, directory=cls.held.dir)
        cls.server.start()
        def done(rs):
            events = [r.get("event") for r in rs]
            bounces = [r for r in rs if r.get("event") == "Bounce" and r["provider"] == "yahoo"]
            finished = (events.count("Delivery") >= 300 + 200 + 20
                        and len(bounces) >= 15 and "Suspension" in events)
            return rs if finished else []
        try:
            cls.server.wait_records(None, "every delivery, the bounces and the suspension",
                                    timeout=TIMEOUT, select_all=done)
        except AssertionError:
            seen = collections.Counter((r.get("event"), r.get("provider"))
                                       for r in cls.server.log_records())
            raise AssertionError(f"the run did not finish: {dict(seen)}") from None
        cls.server.stop()

    @classmethod
    def providers_file(cls):
        path = os.path.join(cls.sim.tmp.name, "providers.toml")
        with open(path, "w") as f:
            f.write(PROVIDERS)
        return path

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.held.close()
        cls.dns.stop()
        cls.sim.close()

    def report(self, *args):
        out = subprocess.run([harness.BIN, "report", self.server.log_path,
                              "--config", self.server.config, *args],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_recommendations_match_the_simulated_situation(self):
        doc = json.loads(self.report("--json"))
        recs = {(r["kind"], r["provider"]): r for r in doc["recommendations"]}
        # gmail: the learned limit, and the burst that met it.
        lower = recs[("lower-limit", "gmail")]
        self.assertIn("[shaping.provider.gmail] connection_limit = 2", lower["action"])
        self.assertIn("connection-limit deferrals", lower["evidence"])
        spread = recs[("spread-campaign", "gmail")]
        self.assertIn("[campaign.spring] window", spread["action"])
        self.assertIn("sent 300 recipients to gmail", spread["evidence"])
        # yahoo: the rate, and authentication for the one domain it refused.
        self.assertIn("message_rate", recs[("lower-rate", "yahoo")]["action"])
        auth = recs[("fix-authentication", "yahoo")]
        self.assertIn("unsigned.test", auth["action"])
        self.assertNotIn("shop.test", auth["action"])
        self.assertIn("15 authentication refusals (15 bounced)", auth["evidence"])
        # microsoft: reputation, with the page from the providers file.
        pm = recs[("contact-postmaster", "microsoft")]
        self.assertIn("https://sendersupport.outlook.test/pm/", pm["action"])
        self.assertIn("[TS01]", pm["evidence"])
        # Nothing else: no invented advice for greylisting, nor trust advice where trust was fine.
        self.assertEqual(set(recs), {("lower-limit", "gmail"), ("spread-campaign", "gmail"),
                                     ("lower-rate", "yahoo"), ("fix-authentication", "yahoo"),
                                     ("contact-postmaster", "microsoft")}, list(recs))
        self.assertEqual(doc["recommendations"][0]["severity"], 3)

    def test_figures_match_the_log(self):
        doc = json.loads(self.report("--json"))
        by_name = {p["name"]: p for p in doc["providers"]}
        self.assertEqual(by_name["gmail"]["recipients"], 300)
        self.assertEqual(by_name["gmail"]["delivered"], 300)
        self.assertGreater(by_name["gmail"]["deferred"]["connection-limit"], 0)
        self.assertEqual(by_name["gmail"]["connection_limit"]["configured"], "10")
        self.assertEqual(set(by_name["gmail"]["connection_limit"]["learned"].values()), {"2"})
        self.assertEqual(by_name["yahoo"]["recipients"], 215)
        self.assertEqual(by_name["yahoo"]["bounces"], {"authentication": 15})
        self.assertEqual(by_name["microsoft"]["delivered"], 0)
        self.assertEqual(len(by_name["microsoft"]["suspensions"]), 1)
        grey = by_name[MX["grey"]]  # no provider rule: the site names the group
        self.assertEqual(grey["delivered"], 20)
        self.assertEqual(grey["deferred"], {"greylist": 20})
        self.assertEqual(doc["received"], 565)
        domains = {d["name"]: d for d in doc["domains"]}
        self.assertEqual(domains["outlook.test"]["provider"], "microsoft")
        # Counted from the log directly.
        with open(self.server.log_path) as f:
            records = [json.loads(line) for line in f]
        for name, p in by_name.items():
            mine = [r for r in records if (r.get("provider") or r.get("site")) == name]
            self.assertEqual(p["delivered"], sum(r["event"] == "Delivery" for r in mine), name)
            self.assertEqual(sum(p["deferred"].values()),
                             sum(r["event"] == "TransientFailure" for r in mine), name)

    def test_terminal_and_html(self):
        html = os.path.join(self.server.dir, "report.html")
        text = self.report("--html", html)
        self.assertIn("RECOMMENDATIONS", text)
        self.assertIn("gmail", text)
        self.assertIn("connection limit:", text)
        with open(html) as f:
            page = f.read()
        self.assertIn("<svg", page)
        self.assertIn("data-kind='lower-limit'", page)
        for external in ("<script", "src=", "href=", "<link"):
            self.assertNotIn(external, page)  # self-contained: opens offline, fetches nothing

    def test_stdin_and_junk_lines(self):
        with open(self.server.log_path, "rb") as f:
            log = f.read()
        out = subprocess.run([harness.BIN, "report", "-", "--json"], input=b"not json\n" + log,
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"skipped 1 lines", out.stderr)
        self.assertEqual(json.loads(out.stdout)["received"], 565)
        missing = subprocess.run([harness.BIN, "report", "/nonexistent/log"],
                                 capture_output=True, timeout=60)
        self.assertEqual(missing.returncode, 66)


if __name__ == "__main__":
    unittest.main()
