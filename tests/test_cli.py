"""End-to-end tests of the sluice binary's command line: --help, --version, serve --check-config,
and serve's start and graceful stop on SIGTERM and SIGINT.

Run by ctest (SLUICE_BIN and SLUICE_SOURCE_DIR set there), or by hand:
    SLUICE_BIN=build/release/sluice python3 -m unittest -v tests/test_cli.py
Waits are for events (a line on stderr, the process exiting), bounded by a timeout; nothing
sleeps on the wall clock.
"""
import json
import os
import select
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("SLUICE_BIN", "build/release/sluice")
SRC = os.environ.get("SLUICE_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 20  # seconds: an upper bound for the event, never a performance threshold


def run(*args, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


def wait_for_event(proc, name):
    """Reads stderr JSON lines until one has event == name; returns the records seen."""
    seen = []
    deadline = time.monotonic() + TIMEOUT
    buf = b""
    fd = proc.stderr.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            rec = json.loads(line)
            seen.append(rec)
            if rec.get("event") == name:
                return seen
    raise AssertionError(f"no {name} event; saw {seen}")


class Cli(unittest.TestCase):
    def test_help_lists_subcommands(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("serve", r.stdout)

    def test_version_prints_version_and_commit(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.strip(), r"^sluice \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}(-dirty)?|unknown\)$")

    def test_serve_help(self):
        r = run("serve", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)
        self.assertIn("--config", r.stdout)

    def test_unknown_subcommand_fails(self):
        r = run("bogus")
        self.assertNotEqual(r.returncode, 0)

    def test_check_config_accepts_the_default_config(self):
        r = run("serve", "--config", os.path.join(SRC, "etc/sluice.toml"), "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_check_config_names_file_line_and_key(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[server]\nthreads = 4\n\n[smtp]\nlisten = "127.0.0.1:99999"\nlistne = "x"\n')
        try:
            r = run("serve", "--config", f.name, "--check-config")
            self.assertEqual(r.returncode, 78)
            self.assertIn(f"{f.name}:5:10: smtp.listen: port must be 1..65535", r.stderr)
            self.assertIn(f"{f.name}:6:10: smtp.listne: unknown key", r.stderr)
            self.assertIn("2 error(s)", r.stderr)
        finally:
            os.unlink(f.name)

    def test_check_config_missing_file(self):
        r = run("serve", "--config", "/nonexistent.toml", "--check-config")
        self.assertEqual(r.returncode, 78)
        self.assertIn("cannot open", r.stderr)


class Serve(unittest.TestCase):
    def start(self, workdir):
        return subprocess.Popen([BIN, "serve", "--config", os.path.join(SRC, "etc/sluice.toml")],
                                cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def check_stop(self, sig):
        with tempfile.TemporaryDirectory() as d:
            # The default config's relative paths resolve in the working directory, STARTTLS
            # pair included (what `make run` makes).
            os.makedirs(os.path.join(d, "var/tls"))
            os.symlink(os.path.join(SRC, "etc"), os.path.join(d, "etc"))  # providers.toml
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-keyout", os.path.join(d, "var/tls/key.pem"),
                            "-out", os.path.join(d, "var/tls/cert.pem")],
                           check=True, capture_output=True, timeout=TIMEOUT)
            p = self.start(d)
            try:
                started = wait_for_event(p, "Started")[-1]
                self.assertIn("version", started)
                self.assertTrue(os.path.isdir(os.path.join(d, "var/spool")))
                p.send_signal(sig)
                wait_for_event(p, "Stopped")
                self.assertEqual(p.wait(timeout=TIMEOUT), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    def test_missing_tls_certificate_names_the_file(self):
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([BIN, "serve", "--config", os.path.join(SRC, "etc/sluice.toml")],
                               cwd=d, capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 1)
            self.assertIn("StartFailed", r.stderr)
            self.assertIn("var/tls/cert.pem", r.stderr)

    def test_sigterm_stops_cleanly(self):
        self.check_stop(signal.SIGTERM)

    def test_sigint_stops_cleanly(self):
        self.check_stop(signal.SIGINT)


class LogRotation(unittest.TestCase):
    def test_sighup_reopens_the_log_file_after_logrotate_moved_it(self):
        import harness
        import smtplib
        server = harness.Sluice()
        server.start()
        try:
            def send(n):
                with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as s:
                    s.sendmail("a@example.org", [f"r{n}@example.net"], "Subject: x\r\n\r\nx\r\n")
            send(1)
            server.wait_count("Reception", 1)
            rotated = server.log_path + ".1"
            os.rename(server.log_path, rotated)  # what logrotate does first
            server.proc.send_signal(signal.SIGHUP)
            server.wait_event("LogReopened")
            send(2)
            # The new record is in a new file at the configured path; the old file kept its own.
            with open(server.log_path, "a"):
                pass  # (exists for the wait below even before the writer's first line)
            server.wait_records(lambda r: r.get("event") == "Reception"
                                and r["recipients"] == ["r2@example.net"], "the new reception")
            with open(rotated) as f:
                old = [json.loads(l) for l in f if l.strip()]
            self.assertEqual([r["recipients"] for r in old if r.get("event") == "Reception"],
                             [["r1@example.net"]])
            self.assertIsNone(server.proc.poll())  # SIGHUP does not stop the server
        finally:
            server.close()


class ConfigReload(unittest.TestCase):
    """SIGHUP reads the configuration again: a good file's [shaping] limits apply to the lanes
    at once and changed sections that need a restart are named; a broken file is refused, its
    errors named with their lines, and the server keeps running on what it had."""

    def test_sighup_applies_limits_refuses_a_bad_file_and_names_what_needs_a_restart(self):
        import harness
        from test_shaping import inject, sluice_cli
        from test_sim import Sim
        sim = Sim({"rx": {}})
        routes = {"rx.test": {"host": "127.0.0.1", "port": sim.ports["rx"]}}
        server = harness.Sluice(queue={"hold": False}, routes=routes,
                                shaping={"default": {"connection_limit": 10}})
        server.start()
        try:
            inject(server.port, 3, "rx.test")
            server.wait_count("Delivery", 3)

            def configured():
                out = sluice_cli("queue", "sites", "--http", f"127.0.0.1:{server.http_port}", "--json")
                [lane] = json.loads(out.stdout)
                return lane["configured_connection_limit"]
            self.assertEqual(configured(), 10)
            with open(server.config) as f:
                good = f.read()
            edited = good.replace("connection_limit = 10", "connection_limit = 3")
            edited = edited.replace('shutdown_grace = "10s"', 'shutdown_grace = "20s"')
            self.assertNotEqual(edited, good)
            with open(server.config, "w") as f:
                f.write(edited)
            server.proc.send_signal(signal.SIGHUP)
            done = server.wait_event("ConfigReloaded")
            self.assertEqual(done["applied"], ["shaping"])
            self.assertEqual(done["restart_needed"], ["server"])
            self.assertEqual(configured(), 3)

            with open(server.config, "w") as f:
                f.write(edited.replace("connection_limit = 3", "connection_limit = 0\nbogus = 1"))
            server.proc.send_signal(signal.SIGHUP)
            failed = server.wait_event("ConfigReloadFailed")
            self.assertTrue(any("connection_limit" in e for e in failed["errors"]), failed)
            self.assertTrue(any("bogus: unknown key" in e for e in failed["errors"]), failed)
            self.assertTrue(all(e.startswith(server.config + ":") for e in failed["errors"]), failed)
            self.assertEqual(configured(), 3)  # the running configuration stays
            inject(server.port, 2, "rx.test", prefix="after")
            server.wait_count("Delivery", 5)
            results = [r["result"] for r in server.log_records("ConfigReload")]
            self.assertEqual(results, ["applied", "refused"])
        finally:
            server.close()
            sim.close()


if __name__ == "__main__":
    unittest.main()
