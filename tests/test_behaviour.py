"""End-to-end tests of what sluice learns from a receiver's behaviour where its words say
nothing: against `sluice sim` providers on loopback.

What they show:
- a provider that enforces 3 connections per IP with a text no rule or phrase knows (421, 450,
  451), or by hanging up without a word, is learned exactly like a known text: at most 3
  connections at once, a handful of refusals, every refusal uncharged, every delivery at its
  first attempt;
- a site that is down (it closes every connection before the banner, is not listening, or
  accepts and never says anything) gets one probe at a time on a backoff, not one connection
  per queued message; one attempt is counted for the outage, the other messages wait
  uncharged, and all are delivered once it comes back.
Waits are for log records and stats (inotify), bounded; nothing sleeps.
"""
import unittest

import harness
from test_shaping import Held
from test_sim import Sim

TIMEOUT = 120

# Texts no rule or phrase of etc/classify.toml or etc/phrases.toml names: only behaviour can say
# what they mean.
UNKNOWN_TEXTS = {
    "421": "421 4.7.0 Blorpt frazzle quux wibble",
    "450": "450 4.3.0 Splendiferous kerfuffle zorp",
    "451": "451 Gribble gronk zzyzx",
}


class LearnsFromBehaviour(unittest.TestCase):
    def converge(self, provider):
        """300 messages to a provider allowing 3 connections per IP; returns the sim's stats
        and sluice's log records."""
        sim = Sim({"p": dict(connection_limit=3, tarpit="5ms", **provider)})
        routes = {"limited.test": {"host": "127.0.0.1", "port": sim.ports["p"]}}
        h = Held(routes, 300, "limited.test")
        try:
            server = h.deliver()
            deliveries = server.wait_count("Delivery", 300, timeout=TIMEOUT)
            self.assertEqual(len({r["id"] for r in deliveries}), 300)
            stats = sim.wait_stats(lambda s: s["providers"]["p"]["unique_message_ids"] >= 300,
                                   "300 messages")["providers"]["p"]
            records = server.log_records()
            self.assertEqual(server.stop(), 0)
            return stats, records
        finally:
            h.close()
            sim.close()

    def check_learned(self, stats, records):
        self.assertEqual(stats["duplicate_message_ids"], 0)
        self.assertLessEqual(max(stats["peak_concurrency"].values()), 3)
        refused = stats["refused"]["connection_limit"]
        self.assertGreaterEqual(refused, 1)  # the limit had to be found …
        self.assertLessEqual(refused, 8)     # … by behaviour, without hammering
        failures = [r for r in records if r.get("event") == "TransientFailure"]
        self.assertEqual(len(failures), refused)
        for r in failures:
            self.assertEqual(r["category"], "connection-limit", r)
            self.assertFalse(r["charged"], r)
        self.assertTrue(all(r["attempt"] == 1 for r in records if r.get("event") == "Delivery"))
        # Learned from what the receiver did (the contextual phrase reads an unexplained 421 at
        # the banner while others work the same way), and the limit settles at 3.
        signals = [r for r in records if r.get("event") == "ThrottleChange"
                   and r.get("reason", "").startswith("connection-limit signal")]
        self.assertTrue(signals, "no connection-limit signal")
        for r in signals:
            self.assertIn(r["rule"], ("behaviour: refused while others work",
                                      "banner-421-while-others-open"), r)
        limits = [r for r in records if r.get("event") == "ThrottleChange"
                  and r.get("limit") == "connection_limit"]
        self.assertEqual(limits[-1]["to"], "3", limits)

    def test_unknown_texts_at_the_banner_with_421_450_and_451(self):
        for code, text in UNKNOWN_TEXTS.items():
            with self.subTest(code=code):
                out = harness.run("classify", text)
                # No rule or phrase names these words: at most the word model guesses (it never
                # suspends a site on a guess), and behaviour decides in delivery.
                self.assertRegex(out.stdout, r" rule=(?:model|code) ", out.stdout)
                self.check_learned(*self.converge({"limit_reply": text}))

    def test_a_throttle_guessed_by_the_word_model_still_yields_to_behaviour(self):
        # Invented words around two the model knows only from rate limits ("daily", "hour"; no
        # rule or phrase names them alone): the model guesses a rate limit (a throttle signal of
        # its own); what the receiver does still says connection limit.
        text = "450 4.7.1 Frotz daily hour zorble"
        out = harness.run("classify", "banner\t" + text)
        self.assertRegex(out.stdout, r"^\S+ soft (?:reduce-\S+|greylist-retry) .* rule=model ",
                         "pick another text: the model no longer guesses a throttle for it")
        self.check_learned(*self.converge({"limit_reply": text}))

    def test_unknown_text_at_mail(self):
        self.check_learned(*self.converge({"limit_reply": UNKNOWN_TEXTS["451"],
                                           "limit_stage": "mail"}))

    def test_silent_hang_up_at_the_banner(self):
        self.check_learned(*self.converge({"limit_action": "hangup"}))


class LearnsTheRateFromBehaviour(unittest.TestCase):
    def test_refusals_that_track_the_message_rate_teach_the_rate(self):
        # 40 messages a second per IP, excess refused at MAIL with words that say nothing.
        sim = Sim({"p": {"message_rate": "40/s", "rate_reply": UNKNOWN_TEXTS["451"]}})
        routes = {"paced.test": {"host": "127.0.0.1", "port": sim.ports["p"]}}
        h = Held(routes, 400, "paced.test")
        try:
            server = h.deliver(queue={"min_backoff": "1s", "max_backoff": "2s"})
            deliveries = server.wait_count("Delivery", 400, timeout=TIMEOUT)
            self.assertEqual(len({r["id"] for r in deliveries}), 400)
            records = server.log_records()
            self.assertEqual(server.stop(), 0)
            changes = [r for r in records if r.get("event") == "ThrottleChange"
                       and r.get("limit") == "message_rate"]
            self.assertTrue(changes, "no message_rate learned")
            self.assertEqual(changes[0]["rule"], "behaviour: refusals track the message rate")
            self.assertLessEqual(float(changes[-1]["to"].split("/")[0]), 40.0)
            # The few refusals before the pattern showed were the messages' own retries; after
            # it, refusals are throttle signals, uncharged, and the stream is paced.
            refused = [r for r in records if r.get("event") == "TransientFailure"]
            charged = [r for r in refused if r["charged"]]
            self.assertLessEqual(len(charged), 8)
            self.assertLess(len(refused), 100)
            self.assertEqual(sim.stats("p")["duplicate_message_ids"], 0)
        finally:
            h.close()
            sim.close()


class DeadDestination(unittest.TestCase):
    DOWN = "20s"
    COUNT = 2000

    def outage(self, mode, delivery=None):
        sim = Sim({"down": {"down_for": self.DOWN, "down_mode": mode}})
        routes = {"down.test": {"host": "127.0.0.1", "port": sim.ports["down"]}}
        h = Held(routes, self.COUNT, "down.test")
        try:
            server = h.deliver(delivery=delivery or {})
            deliveries = server.wait_count("Delivery", self.COUNT, timeout=TIMEOUT)
            self.assertEqual(len({r["id"] for r in deliveries}), self.COUNT)
            records = server.log_records()
            self.assertEqual(server.stop(), 0)
            stats = sim.stats("down")
            # Connection attempts while the site was down: each failed connection reports its
            # one job (sluice's side, which also sees connections the kernel refused).
            failed = [r for r in records if r.get("event") == "TransientFailure"]
            self.assertGreaterEqual(len(failed), 1)
            self.assertLessEqual(len(failed), 20, f"{len(failed)} connection attempts while down")
            # One attempt counted for the outage, to the message that found it; the rest wait
            # uncharged.
            self.assertEqual(sum(r["charged"] for r in failed), 1, failed)
            for r in failed:
                self.assertIn(r["stage"], ("connect", "banner"), r)
            if mode != "refuse":
                # The simulator saw them too (a silent host's connection still waiting when it
                # comes back gets its banner and delivers: counted down, not failed).
                self.assertGreaterEqual(stats["refused"]["down"], len(failed))
                self.assertLessEqual(stats["refused"]["down"], len(failed) + 1)
            attempts = sorted(r["attempt"] for r in records if r.get("event") == "Delivery")
            self.assertEqual(attempts, [1] * (self.COUNT - 1) + [2])
            holds = [r for r in records if r.get("event") == "ThrottleChange"
                     and r.get("reason", "").startswith("site unavailable")]
            self.assertTrue(holds, "the site was never marked unavailable")
            self.assertTrue(any(r.get("reason") == "site available: a probe works"
                                for r in records if r.get("event") == "ThrottleChange"))
            return failed
        finally:
            h.close()
            sim.close()

    def test_closes_every_connection(self):
        self.outage("close")

    def test_not_listening(self):
        self.outage("refuse")

    def test_never_answers(self):
        self.outage("silent", delivery={"command_timeout": "2s"})


if __name__ == "__main__":
    unittest.main()
