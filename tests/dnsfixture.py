"""A real DNS server for delivery tests: dnsmasq on 127.0.0.1 at a free port, serving test zones
only (no upstream resolvers, no /etc/hosts, no /etc/resolv.conf, no DHCP), plus a tiny DNS client
(socket + struct) to check what it serves.

    with DnsServer([mx("example.test", "mx1.example.test", 10),
                    host("mx1.example.test", "127.0.0.2", "::1"),
                    null_mx("nullmx.test"), servfail("broken.test")]) as dns:
        query("example.test", "MX", dns.port)

What each name answers (dnsmasq 2.90, `local=/test/`):
  - records given here: NOERROR with them, TTL `ttl` (dnsmasq's local-ttl) unless a host() has
    its own; a name that has records but none of the asked type: NOERROR with no answer (NODATA);
  - any other name under a zone: NXDOMAIN (rcode 3), with no SOA, so it is not negatively cached;
  - names outside the zones: REFUSED (rcode 5): nothing is ever forwarded off this machine;
  - servfail(d), refused(d), timeout(d): d and the names under it are forwarded to a small
    upstream in this process that answers SERVFAIL (2), REFUSED (5), or never answers (dnsmasq
    then stays silent too, over UDP; a TCP query waits until stop()). dnsmasq cannot make a
    SERVFAIL from its own configuration (a server that does not answer gives silence, one it
    cannot send to gives REFUSED), and it passes an upstream's SERVFAIL through unchanged.
Every query dnsmasq receives is logged (log-queries): queries() and wait_for_queries() count them,
so a test can check a resolver's cache against the TTLs.
"""
import collections
import ipaddress
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time

TIMEOUT = 30  # seconds: an upper bound for an event, never a performance threshold
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5

Failure = collections.namedtuple("Failure", "domain rcode")  # rcode None: never answered
Query = collections.namedtuple("Query", "qtype name client")


# --- records: each is a line of dnsmasq configuration, or a Failure ------------------------------

def mx(domain, target, preference):
    """An MX record of domain: target with preference (lower is tried first)."""
    return f"mx-host={domain},{target},{preference}"


def null_mx(domain):
    """RFC 7505's null MX: one MX with preference 0 and the root as target ("0 .")."""
    return mx(domain, ".", 0)


def host(name, *addresses, ttl=None):
    """A and AAAA records of name: one host-record line per address (IPv4 or IPv6)."""
    assert addresses, "host() needs an address"
    return "\n".join(f"host-record={name},{ipaddress.ip_address(a)}" + (f",{ttl}" if ttl else "")
                     for a in addresses)


def txt(name, text):
    """A TXT record; dnsmasq splits text over 255 octets into several strings."""
    return f'txt-record={name},"{text}"'


def cname(alias, target):
    """A CNAME record; target must be a name this server has records for."""
    return f"cname={alias},{target}"


def servfail(domain):
    """domain and every name under it answer SERVFAIL."""
    return Failure(domain, SERVFAIL)


def refused(domain):
    """domain and every name under it answer REFUSED."""
    return Failure(domain, REFUSED)


def timeout(domain):
    """domain and every name under it are never answered."""
    return Failure(domain, None)


# --- the upstream that dnsmasq forwards the failing domains to ------------------------------------

def _qname(msg):
    labels, i = [], 12
    while msg[i]:
        labels.append(msg[i + 1:i + 1 + msg[i]].decode("ascii", "replace").lower())
        i += 1 + msg[i]
    return ".".join(labels), i + 5  # the name, and where the question ends


class _Upstream:
    """Answers each query with the rcode of its Failure domain, or not at all (UDP and TCP)."""

    def __init__(self, failures):
        self.failures, self.stopping = failures, threading.Event()
        upstream = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                reply = upstream.answer(self.request[0])
                if reply:
                    self.request[1].sendto(reply, self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self):
                while (head := self.rfile.read(2)) and len(head) == 2:
                    reply = upstream.answer(self.rfile.read(struct.unpack("!H", head)[0]))
                    if reply is None:
                        upstream.stopping.wait(TIMEOUT)
                        return
                    self.wfile.write(struct.pack("!H", len(reply)) + reply)

        for _ in range(20):  # one port for both protocols, as dnsmasq's server=ADDR#PORT uses
            self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            try:
                self.tcp = socketserver.ThreadingTCPServer(self.udp.server_address, Tcp)
                break
            except OSError:
                self.udp.server_close()
        else:
            raise OSError("no port free for both UDP and TCP")
        self.udp.daemon_threads = self.tcp.daemon_threads = True
        self.port = self.udp.server_address[1]
        for server in (self.udp, self.tcp):
            threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()

    def answer(self, msg):
        name, end = _qname(msg)
        rcode = next((f.rcode for f in self.failures
                      if name == f.domain.lower() or name.endswith("." + f.domain.lower())), None)
        if rcode is None:
            return None
        flags = 0x8000 | (struct.unpack("!H", msg[2:4])[0] & 0x7900) | 0x0080 | rcode  # QR RD RA
        return msg[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + msg[12:end]

    def stop(self):
        self.stopping.set()
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()


# --- the server ----------------------------------------------------------------------------------

class DnsServer:
    """dnsmasq serving records (see the module's doc) for zones, on address at a free port."""

    def __init__(self, records=(), zones=("test",), ttl=60, address="127.0.0.1", port=None):
        """port: a fixed one (53 for a resolver that cannot be told another); default free."""
        self.fixed_port = port
        self.records = list(records)
        self.zones = [zones] if isinstance(zones, str) else list(zones)
        self.ttl, self.address, self.port = ttl, address, None
        self.proc = self._upstream = self._tmp = None
        self.log, self._eof = [], False  # every line dnsmasq wrote (its log, on stderr)
        self._cond = threading.Condition()

    def config(self, port, pid_file, lease_file):
        lines = [f"port={port}", f"listen-address={self.address}", "bind-interfaces",
                 "no-resolv", "no-hosts", "no-poll", "keep-in-foreground", "log-facility=-",
                 "log-queries", f"pid-file={pid_file}", f"dhcp-leasefile={lease_file}",
                 f"local-ttl={self.ttl}"]
        lines += [f"local=/{z}/" for z in self.zones]
        for r in self.records:
            if isinstance(r, Failure):
                lines.append(f"server=/{r.domain}/127.0.0.1#{self._upstream.port}")
            else:
                lines.append(r)
        return "\n".join(lines) + "\n"

    def start(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sluice-dns-")
        failures = [r for r in self.records if isinstance(r, Failure)]
        if failures:
            self._upstream = _Upstream(failures)
        for _ in range(5):  # a port found free can be taken before dnsmasq binds it: try another
            self.port = self.fixed_port or _free_udp_tcp_port(self.address)
            conf = os.path.join(self._tmp.name, "dnsmasq.conf")
            with open(conf, "w") as f:
                f.write(self.config(self.port, os.path.join(self._tmp.name, "dnsmasq.pid"),
                                    os.path.join(self._tmp.name, "dnsmasq.leases")))
            self.log, self._eof = [], False
            self.proc = subprocess.Popen([DNSMASQ, f"--conf-file={conf}"], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True)  # its TCP children: one group
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
            started = lambda: any("started, version" in l for l in self.log)  # after it binds
            self._wait(lambda: self._eof or started())
            if started() and self.proc.poll() is None:
                return self
            self._end_process()
            if not any("Address already in use" in l for l in self.log):
                break
        log = "\n".join(self.log)
        self.stop()
        raise AssertionError(f"dnsmasq did not start:\n{log}")

    def _read(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _wait(self, pred, timeout=TIMEOUT):
        with self._cond:
            return self._cond.wait_for(pred, timeout)

    def queries(self, name=None, qtype=None):
        """The queries dnsmasq has received so far (optionally only for name and/or qtype)."""
        with self._cond:
            lines = list(self.log)
        found = [Query(*m.groups()) for m in
                 (re.search(r" query\[(\w+)\] (\S+) from (\S+)$", l) for l in lines) if m]
        return [q for q in found if (name is None or q.name.lower() == name.lower()) and
                (qtype is None or q.qtype == qtype)]

    def wait_for_queries(self, n, name=None, qtype=None, timeout=TIMEOUT):
        """Waits until at least n such queries were received and returns them."""
        if not self._wait(lambda: len(self.queries(name, qtype)) >= n, timeout):
            raise AssertionError(f"fewer than {n} queries for {name} {qtype}:\n" +
                                 "\n".join(self.log))
        return self.queries(name, qtype)

    @property
    def nameserver(self):
        """"ADDRESS:PORT", as sluice's [dns] nameservers (c-ares' servers_ports_csv) takes it."""
        return f"{self.address}:{self.port}"

    def query(self, name, qtype, **kw):
        """query() against this server."""
        return query(name, qtype, self.port, self.address, **kw)

    def _end_process(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # its own group (start_new_session)
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(TIMEOUT)
        if self.proc:
            self._reader.join(TIMEOUT)
            self.proc.stderr.close()

    def stop(self):
        self._end_process()
        if self._upstream:
            self._upstream.stop()
            self._upstream = None
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _free_udp_tcp_port(address):
    for _ in range(50):
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind((address, 0))
            try:
                u.bind((address, t.getsockname()[1]))
            except OSError:
                continue
            return t.getsockname()[1]
    raise OSError("no port free for both UDP and TCP")


# --- a DNS client: one question, the answer parsed ------------------------------------------------

RR = collections.namedtuple("RR", "name type ttl value rdata")
Response = collections.namedtuple("Response", "rcode flags answers authority additional")


def query(name, qtype, port, address="127.0.0.1", tcp=False, timeout=5.0):
    """Sends one question (RD set) and returns the Response; socket.timeout if none comes.
    RR values: A/AAAA an address string, MX (preference, target) with "." for the root,
    CNAME/NS/PTR a name, SOA (mname, rname, serial, refresh, retry, expire, minimum), else bytes."""
    qid = random.randrange(65536)
    msg = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode(name) + \
        struct.pack("!HH", TYPES[qtype], 1)
    if tcp:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(msg)) + msg)
            f = s.makefile("rb")
            head = f.read(2)
            if len(head) < 2:
                raise ConnectionError("DNS server closed the TCP connection without a reply")
            reply = f.read(struct.unpack("!H", head)[0])
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(msg, (address, port))
            deadline = time.monotonic() + timeout
            while True:
                s.settimeout(max(0.001, deadline - time.monotonic()))
                reply = s.recv(65535)
                if reply[:2] == msg[:2]:
                    break
    return _parse(reply)


def _encode(name):
    return b"".join(bytes([len(l)]) + l.encode("ascii") for l in name.strip(".").split(".") if l) \
        + b"\0"


def _name(msg, i):
    """The name at offset i (following compression pointers), and the offset after it."""
    labels, end = [], None
    for _ in range(128):
        n = msg[i]
        if n >= 0xC0:
            end = i + 2 if end is None else end
            i = ((n & 0x3F) << 8) | msg[i + 1]
        elif n == 0:
            return ".".join(labels) or ".", (i + 1 if end is None else end)
        else:
            labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
    raise ValueError("compression loop")


def _parse(msg):
    _, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    i = 12
    for _ in range(qd):
        i = _name(msg, i)[1] + 4
    sections = []
    for count in (an, ns, ar):
        rrs = []
        for _ in range(count):
            name, i = _name(msg, i)
            rtype, _, ttl, size = struct.unpack("!HHIH", msg[i:i + 10])
            i += 10
            rdata, value = msg[i:i + size], msg[i:i + size]
            if rtype == 1 or rtype == 28:
                value = str(ipaddress.ip_address(rdata))
            elif rtype == 15:
                value = (struct.unpack("!H", rdata[:2])[0], _name(msg, i + 2)[0])
            elif rtype in (2, 5, 12):
                value = _name(msg, i)[0]
            elif rtype == 6:
                mname, j = _name(msg, i)
                rname, j = _name(msg, j)
                value = (mname, rname, *struct.unpack("!IIIII", msg[j:j + 20]))
            rtype = next((k for k, v in TYPES.items() if v == rtype), rtype)
            rrs.append(RR(name, rtype, ttl, value, rdata))
            i += size
        sections.append(rrs)
    return Response(flags & 0xF, flags, *sections)
