"""Shared helpers for end-to-end tests: run the real sluice binary on loopback with a config of
the test's own, in a temporary directory, and read what it wrote.

Every wait is for an event (a log line, a port, a process exit) and bounded by TIMEOUT; nothing
sleeps on the wall clock.
"""
import ctypes
import json
import os
import resource
import select
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("SLUICE_BIN", "build/release/sluice")
SRC = os.environ.get("SLUICE_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 30  # seconds: an upper bound for an event, never a performance threshold
_libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY = 0x2


_handed_out = set()  # ports free_port() returned in this process


def free_port():
    """A port free now and never handed out before in this process: two calls in a row may
    otherwise get the same port from the kernel (the SMTP and HTTP listeners of one server
    then collide, and _repick_ports would rewrite both to one new port, again and again)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise AssertionError("no fresh free port")


def common_port(addresses):
    """A port free on every one of the loopback addresses at once (MX hosts share a port)."""
    for _ in range(50):
        port = free_port()
        socks = []
        try:
            for a in addresses:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((a, port))
                socks.append(s)
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no common free port")


def run(*args, input=None, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          input=input, cwd=cwd)


def make_tls(directory):
    """A self-signed certificate and key for localhost; returns (cert, key) paths."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=TIMEOUT)
    return cert, key


def make_credentials(directory, users):
    """A credentials file made with `sluice passwd`; users is {name: password}."""
    path = os.path.join(directory, "credentials")
    with open(path, "w") as f:
        for user, password in users.items():
            r = run("passwd", user, input=password + "\n")
            assert r.returncode == 0, r.stderr
            f.write(r.stdout)
    return path


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def write_table(f, name, keys):
    """[name] with its scalar keys, then a [name.sub] table for each dict value (shaping)."""
    f.write(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()
                                    if not isinstance(v, dict)))
    for k, v in keys.items():
        if isinstance(v, dict):
            sub = k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)
            write_table(f, f"{name}.{sub}", v)


def wait_modified(path, check, timeout, failure):
    """Calls check() each time `path` is modified (inotify, bounded by timeout) until it returns
    something true, and returns that; raises AssertionError(failure()) at the deadline."""
    fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0 or _libc.inotify_add_watch(fd, path.encode(), IN_MODIFY) < 0:
        raise OSError(ctypes.get_errno(), "inotify")
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(failure())
            try:
                os.read(fd, 1 << 16)
            except BlockingIOError:
                pass
    finally:
        os.close(fd)


class LogTail:
    """A server's log read incrementally: for tests with tens of thousands of records, where
    reading the whole file at every change would be quadratic."""

    def __init__(self, server):
        self.path = server.log_path
        self.records = []
        self._pos = 0
        self._partial = b""

    def read(self):
        """Appends the records written since the last call to self.records; returns them."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        self._pos += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        new = [json.loads(l) for l in lines if l.strip()]
        self.records += new
        return new

    def wait(self, done, what, timeout=TIMEOUT):
        """Waits until done(self.records) is true (reading as the log grows); returns it."""
        def check():
            self.read()
            return done(self.records)
        return wait_modified(self.path, check, timeout, lambda: f"no {what} in the log")


class Sluice:
    """One sluice server in its own directory. smtp: extra [smtp] keys."""

    def __init__(self, directory=None, smtp=None, server=None, spool_path=None, spool=None,
                 queue=None, delivery=None, dns=None, routes=None, shaping=None, classify=None,
                 max_open_files=None, extra="", http=None):
        """Acceptance tests get [queue] hold = true (nothing is delivered, the spool keeps every
        message); delivery tests pass queue={"hold": False} and routes/dns of their own.
        extra: TOML text appended as is ([source.*], [pool.*], [tenant.*] tables)."""
        self._tmp = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sluice-e2e-")
            directory = self._tmp.name
        self.dir = directory
        self.port = free_port()
        self.http_port = free_port()
        self.spool_path = spool_path or os.path.join(directory, "spool")
        self.log_path = os.path.join(directory, "log.jsonl")
        self.config = os.path.join(directory, "sluice.toml")
        server = dict({"shutdown_grace": "10s"}, **(server or {}))
        smtp = dict({"listen": f"127.0.0.1:{self.port}"}, **(smtp or {}))
        with open(self.config, "w") as f:
            f.write("[server]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in server.items()))
            f.write("[smtp]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in smtp.items()))
            f.write(f"[http]\nlisten = \"127.0.0.1:{self.http_port}\"\n" +
                    "".join(f"{k} = {toml_value(v)}\n" for k, v in (http or {}).items()))
            spool = dict({"path": self.spool_path, "min_free_space": "1MB"}, **(spool or {}))
            f.write("[spool]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in spool.items()))
            sections = {
                "queue": dict({"hold": True}, **(queue or {})),
                "delivery": delivery or {},
                "dns": dict({"providers": os.path.join(SRC, "etc/providers.toml")}, **(dns or {})),
                "classify": classify or {},
                "shaping": shaping or {},
            }
            for name, keys in sections.items():
                write_table(f, name, keys)
            for domain, keys in (routes or {}).items():
                f.write(f"[route.{json.dumps(domain)}]\n" +
                        "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()))
            f.write(f"[log]\npath = {json.dumps(self.log_path)}\n")
            f.write(extra)
        self.max_open_files = max_open_files  # RLIMIT_NOFILE (soft and hard) of the server
        self.proc = None
        self.events = []
        self.stderr_lines = []  # what the server wrote to stderr that is not a JSON event
        self._buf = b""

    def start(self):
        limit = self.max_open_files
        preexec = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))) \
            if limit else None
        for attempt in range(5):
            self.proc = subprocess.Popen([BIN, "serve", "--config", self.config],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         preexec_fn=preexec)
            try:
                self.wait_event("Started")
                return self
            except AssertionError as e:
                # A port picked free may be taken by another test before sluice listens: the
                # ports this harness picked are picked again (bounded).
                if "Address already in use" not in str(e) or attempt == 4:
                    raise
                self.proc.wait(timeout=TIMEOUT)
                self.proc.stderr.close()
                self.events, self._buf = [], b""
                self._repick_ports()
        return self

    def _repick_ports(self):
        with open(self.config) as f:
            text = f.read()
        old_http, self.http_port = self.http_port, free_port()
        text = text.replace(f'listen = "127.0.0.1:{old_http}"', f'listen = "127.0.0.1:{self.http_port}"')
        if f'listen = "127.0.0.1:{self.port}"' in text:
            old_smtp, self.port = self.port, free_port()
            text = text.replace(f'listen = "127.0.0.1:{old_smtp}"', f'listen = "127.0.0.1:{self.port}"')
        with open(self.config, "w") as f:
            f.write(text)

    def wait_event(self, name):
        """Reads the server's stderr JSON lines until one has event == name."""
        deadline = time.monotonic() + TIMEOUT
        fd = self.proc.stderr.fileno()
        while time.monotonic() < deadline:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    rec = json.loads(line)
                except ValueError:  # a non-JSON line (a crash message): kept for the failure
                    self.stderr_lines.append(line.decode("utf-8", "replace"))
                    continue
                self.events.append(rec)
                if rec.get("event") == name:
                    return rec
                if rec.get("event") == "StartFailed":
                    raise AssertionError(f"sluice failed to start: {rec}")
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._buf += chunk
        exit_code = self.proc.poll()
        raise AssertionError(f"no {name} event; saw {self.events}; exit code {exit_code}; other "
                             "output:\n" + "\n".join(self.stderr_lines[-80:]))

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.wait_event("Stopped")
        code = self.proc.wait(timeout=TIMEOUT) if self.proc else 0
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(timeout=TIMEOUT)
            self.proc.stderr.close()

    def log_records(self, event=None):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            recs = [json.loads(l) for l in f if l.strip()]
        return [r for r in recs if event is None or r.get("event") == event]

    def wait_records(self, pred, what="the record", timeout=TIMEOUT, select_all=None):
        """Waits (inotify on the log file, bounded) until some log records satisfy pred; returns
        them. The log is written by a thread of its own, a little after the event.
        select_all, instead of pred: a function of all records returning the wanted ones."""
        select_all = select_all or (lambda records: [r for r in records if pred(r)])

        def check():
            try:
                return select_all(self.log_records())
            except ValueError:  # a line being written
                return []
        return wait_modified(self.log_path, check, timeout,
                             lambda: f"no log record for {what}; log: {self.log_records()}")

    def wait_count(self, event, count, timeout=TIMEOUT):
        """Waits until the log has at least `count` records of `event`; returns them."""
        def enough(records):
            found = [r for r in records if r.get("event") == event]
            return found if len(found) >= count else []
        return self.wait_records(None, f"{count} {event} records", timeout, select_all=enough)

    def spool_ls(self):
        r = run("spool", "ls", "--config", self.config)
        assert r.returncode == 0, r.stderr
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def close(self):
        self.kill()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
