"""`make demo` as a new user runs it (scripts/demo, bounded, on free ports): the simulator's five
provider models, sluice learning each one's limit per source, every message delivered, and the
report's recommendations naming what was simulated."""
import os
import re
import subprocess
import tempfile
import unittest

import harness


class Demo(unittest.TestCase):
    def test_the_demo_learns_each_limit_and_reports_it(self):
        with tempfile.TemporaryDirectory(prefix="sluice-demo-") as d:
            out = subprocess.run([os.path.join(harness.SRC, "scripts/demo"), "--seconds", "120",
                                  "--no-wait", "--free-ports", "--dir", d],
                                 capture_output=True, text=True, timeout=240,
                                 env=dict(os.environ, SLUICE_BIN=os.path.abspath(harness.BIN)))
            self.assertEqual(out.returncode, 0, out.stderr + out.stdout[-3000:])
            text = out.stdout
            self.assertIn("dashboard  http://127.0.0.1:", text)
            self.assertRegex(text, r"delivered (\d+) of \1\n")  # every message
            # What it learned, per source: Gmail's 4 and Microsoft's 3 (words no rule knew).
            for provider, limit in (("gmail", 4), ("microsoft", 3)):
                for source in ("ip1", "ip2"):
                    self.assertRegex(text, rf"\n{provider}\s+{source}\s+\d+\s+{limit}\s+{limit}\s")
            self.assertIn("[shaping.provider.gmail] connection_limit = 4", text)
            self.assertIn("[shaping.provider.microsoft] connection_limit = 3", text)
            self.assertRegex(text, r"yahoo: Set \[shaping.provider.yahoo\] message_rate")
            self.assertIn("comcast: Check comcast's reputation data", text)
            self.assertTrue(os.path.getsize(os.path.join(d, "report.html")) > 1000)


if __name__ == "__main__":
    unittest.main()
