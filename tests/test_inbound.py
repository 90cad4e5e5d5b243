"""End-to-end tests of the ESMTP listener with real clients: swaks, Python's smtplib and raw
sockets, against the real sluice binary on loopback (tests/harness.py).

Run by hand:
    cd tests && SLUICE_BIN=../build/release/sluice python3 -m unittest -v test_inbound
Every wait is for an event (a reply, a close, a log line) and bounded by a socket timeout or a
deadline; nothing sleeps on the wall clock. The log is written by a thread of its own after the
spool has the message, so a Reception record is waited for (inotify on the log file).
"""
import base64
import collections
import os
import re
import select
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness

TIMEOUT = 10  # seconds: socket timeout and every event wait, never a performance threshold
HOST = "localhost"
QUEUED = re.compile(r"^Ok: queued as ([0-9a-f]{16})$")
BODY = "Subject: test\r\n\r\nHello.\r\n"
_files = {}  # the module's TLS certificate and credentials, made once


def setUpModule():
    _files["tmp"] = tempfile.TemporaryDirectory(prefix="sluice-inbound-")
    d = _files["tmp"].name
    _files["cert"], _files["key"] = harness.make_tls(d)
    _files["creds"] = harness.make_credentials(d, {"alice": "s3cret"})


def tearDownModule():
    _files["tmp"].cleanup()


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- a raw SMTP client -------------------------------------------------------------------------

Reply = collections.namedtuple("Reply", "code enhanced text lines")


class Client:
    """A line-level SMTP client that keeps a transcript for failure messages."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.transcript = []
        self.banner = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append("C: " + repr(data if len(data) < 300 else data[:300] + b"..."))
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.fail("connection closed while waiting for a reply")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        text = line.decode("utf-8", "replace")
        self.transcript.append("S: " + text)
        return text

    def reply(self):
        lines = [self._line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self._line())
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})(?: |$)", lines[0][4:])
        enh = m.group(1) if m else ""
        strip = len(enh) + 1 if enh else 0
        return Reply(int(lines[0][:3]), enh, "\n".join(l[4 + strip:] for l in lines), lines)

    def fail(self, why):
        raise AssertionError(why + "\ntranscript:\n  " + "\n  ".join(self.transcript))

    def expect(self, code, enhanced=None, text=None):
        """Reads one reply and checks its code, enhanced code and (a regex on) its text."""
        r = self.reply()
        if r.code != code or (enhanced is not None and r.enhanced != enhanced) or (
                text is not None and not re.search(text, r.text)):
            self.fail(f"expected {code} {enhanced or ''} {text or ''}, got {r.lines}")
        return r

    def check(self, line, code, enhanced=None, text=None):
        self.send(line + "\r\n")
        return self.expect(code, enhanced, text)

    def closed(self):
        """True once the server has closed the connection (bounded by the socket timeout)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.transcript.append("S: (after the end) " + repr(chunk))
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def starttls(self):
        self.sock = tls_context().wrap_socket(self.sock, server_hostname=HOST)

    def message(self, sender="a@example.org", rcpts=("b@example.net",), body=BODY,
                mail_params="", rcpt_params=""):
        """One MAIL/RCPT/DATA transaction; returns the reply to the final dot."""
        self.check(f"MAIL FROM:<{sender}>{mail_params}", 250, "2.1.0")
        for r in rcpts:
            self.check(f"RCPT TO:<{r}>{rcpt_params}", 250, "2.1.5")
        self.check("DATA", 354)
        self.send(body + ".\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def queued_id(reply):
    m = QUEUED.match(reply.text) if reply.code == 250 and reply.enhanced == "2.0.0" else None
    assert m, f"not a queued reply: {reply.lines}"
    return m.group(1)


# --- waiting for log records -------------------------------------------------------------------

def wait_records(server, pred, what):
    return server.wait_records(pred, what, TIMEOUT)


def reception(server, qid):
    return wait_records(server, lambda r: r.get("event") == "Reception" and r.get("id") == qid,
                        f"message {qid}")[0]


def swaks(port, *args):
    cmd = ["swaks", "--server", f"127.0.0.1:{port}", "--timeout", str(TIMEOUT),
           "--from", "swaks@example.org", "--to", "rcpt@example.net", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * TIMEOUT)
    assert r.returncode == 0, f"swaks failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    m = re.search(r"<[-~]  250 2\.0\.0 Ok: queued as ([0-9a-f]{16})", r.stdout)
    assert m, f"no queued reply in swaks output:\n{r.stdout}"
    mid = re.search(r"^ [-~]> Message-Id: (<[^>]+>)", r.stdout, re.M)
    return m.group(1), (mid.group(1) if mid else None), r.stdout


def smtp(port, helo="smtplib.example"):
    return smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=TIMEOUT)


class ServerCase(unittest.TestCase):
    """Starts one server for the class with SMTP as its [smtp] keys."""
    SMTP = {}
    TLS = False
    CREDENTIALS = False
    EXTRA = ""  # more TOML ([tenant.*], …)

    @classmethod
    def setUpClass(cls):
        smtp_keys = dict(cls.SMTP)
        if cls.TLS:
            smtp_keys.update(tls_cert=_files["cert"], tls_key=_files["key"])
        if cls.CREDENTIALS:
            smtp_keys["auth_credentials"] = _files["creds"]
        cls.server = harness.Sluice(smtp=smtp_keys, extra=cls.EXTRA).start()
        cls.port = cls.server.port

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        if self.server.proc.poll() is not None:  # an earlier test killed it: the rest get a new one
            type(self).server.close()
            type(self).setUpClass()

    def tearDown(self):
        code = self.server.proc.poll()
        if code is not None:
            rest = self.server._buf + self.server.proc.stderr.read()
            self.fail(f"sluice exited with status {code} during this test; stderr: {rest!r}")

    def connect(self, ehlo="client.example"):
        c = Client(self.port)
        self.addCleanup(c.close)
        if c.banner.code != 220:
            c.fail(f"banner {c.banner.lines}")
        if ehlo:
            c.check(f"EHLO {ehlo}", 250)
        return c

    def logged_in(self):
        """A session after STARTTLS and AUTH PLAIN as alice."""
        c = self.connect()
        c.check("STARTTLS", 220, "2.0.0")
        c.starttls()
        c.check("EHLO submit.example", 250)
        ir = base64.b64encode(b"\0alice\0s3cret").decode()
        c.check(f"AUTH PLAIN {ir}", 235, "2.7.0")
        return c

    def receptions_by_helo(self, c, helo):
        """Sends a sentinel message on c (greeted as helo) and returns every Reception record
        with that helo once the sentinel's is logged: the log is in order, so anything else
        this session queued is there too."""
        qid = queued_id(c.message(body="Subject: sentinel\r\n\r\nx\r\n"))
        reception(self.server, qid)
        return [r for r in self.server.log_records("Reception") if r["helo"] == helo], qid


# --- the default policy: loopback is a client network; STARTTLS offered, no AUTH -----------------

class Protocol(ServerCase):
    SMTP = {"max_message_size": 20000, "max_recipients": 3, "max_errors": 100}
    TLS = True

    def test_banner(self):
        c = self.connect(ehlo=None)
        self.assertEqual(c.banner.lines, [f"220 {HOST} ESMTP sluice"])

    def test_ehlo_lists_extensions(self):
        c = self.connect(ehlo=None)
        r = c.check("EHLO client.example", 250)
        self.assertTrue(r.lines[0].startswith(f"250-{HOST}"), r.lines)
        keywords = r.text.split("\n")[1:]
        for k in ["PIPELINING", "SIZE 20000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                  "DSN", "CHUNKING", "STARTTLS", "HELP"]:
            self.assertIn(k, keywords)
        self.assertFalse([k for k in keywords if k.startswith("AUTH")], keywords)

    def test_helo(self):
        c = self.connect(ehlo=None)
        r = c.check("HELO client.example", 250)
        self.assertEqual(r.lines, [f"250 {HOST}"])
        queued_id(c.message())

    def test_simple_commands(self):
        c = self.connect()
        c.check("NOOP", 250, "2.0.0")
        c.check("RSET", 250, "2.0.0")
        c.check("VRFY bob", 252, "2.1.5")
        c.check("EXPN staff", 502, "5.5.1")
        c.check("HELP", 214)
        c.check("QUIT", 221, "2.0.0")
        self.assertTrue(c.closed())

    def test_message_accepted_and_logged(self):
        c = self.connect(ehlo="logged.example")
        qid = queued_id(c.message(sender="from@example.org",
                                  rcpts=("r1@example.net", "r2@example.com")))
        rec = reception(self.server, qid)
        self.assertEqual(rec["sender"], "from@example.org")
        self.assertEqual(rec["recipients"], ["r1@example.net", "r2@example.com"])
        self.assertEqual(rec["client_ip"], "127.0.0.1")
        self.assertEqual(rec["helo"], "logged.example")
        self.assertEqual(rec["protocol"], "ESMTP")
        self.assertIs(rec["tls"], False)
        self.assertNotIn("auth_user", rec)
        self.assertGreater(rec["size"], len(BODY))  # a Received header, Message-ID and Date added
        self.assertEqual(rec["message_id"], f"<{qid}@{HOST}>")

    def test_client_message_id_kept(self):
        c = self.connect()
        qid = queued_id(c.message(body="Message-ID: <abc.123@client.example>\r\n" + BODY))
        self.assertEqual(reception(self.server, qid)["message_id"], "<abc.123@client.example>")

    def test_rset_clears_transaction(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("RSET", 250, "2.0.0")
        c.check("RCPT TO:<b@example.net>", 503, "5.5.1")

    # Errors.
    def test_unknown_command(self):
        self.connect().check("FROB", 500, "5.5.1")

    def test_command_line_too_long(self):
        c = self.connect()
        for n in (600, 5000):  # over the verb's limit; over the framer's 2048
            with self.subTest(n=n):
                c.check("NOOP " + "x" * n, 500, "5.5.2")
                c.check("NOOP", 250, "2.0.0")  # still in step

    def test_bare_lf_ends_no_command(self):
        c = self.connect()
        c.send("NOOP\n")
        c.expect(500, "5.5.2")
        c.check("NOOP", 250, "2.0.0")

    def test_mail_before_ehlo(self):
        self.connect(ehlo=None).check("MAIL FROM:<a@example.org>", 503, "5.5.1")

    def test_nested_mail(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("MAIL FROM:<a@example.org>", 503, "5.5.1")

    def test_rcpt_before_mail(self):
        self.connect().check("RCPT TO:<b@example.net>", 503, "5.5.1")

    def test_data_before_mail(self):
        self.connect().check("DATA", 503, "5.5.1")

    def test_data_without_recipients(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("DATA", 554, "5.5.1")

    def test_bad_sender_syntax(self):
        self.connect().check("MAIL FROM:<a@>", 501, "5.1.7")

    def test_bad_recipient_syntax(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("RCPT TO:<b@@example.net>", 501, "5.1.3")

    def test_unknown_parameters(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org> FROB=1", 555, "5.5.4")
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("RCPT TO:<b@example.net> FROB=1", 555, "5.5.4")

    def test_size_parameter_over_limit(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org> SIZE=20001", 552, "5.3.4")
        c.check("MAIL FROM:<a@example.org> SIZE=1000", 250, "2.1.0")

    def test_message_over_limit_refused_after_dot(self):
        c = self.connect(ehlo="toobig.example")
        body = BODY + ("y" * 78 + "\r\n") * 300  # 24 000 octets
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        c.expect(250, "2.1.0"), c.expect(250, "2.1.5"), c.expect(354)
        c.send(body)
        c.send(".\r\n")
        c.expect(552, "5.3.4")
        c.check("NOOP", 250, "2.0.0")
        recs, sentinel = self.receptions_by_helo(c, "toobig.example")
        self.assertEqual([r["id"] for r in recs], [sentinel])

    def test_too_many_recipients(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        for i in range(3):
            c.check(f"RCPT TO:<r{i}@example.net>", 250, "2.1.5")
        c.check("RCPT TO:<r3@example.net>", 452, "4.5.3")
        c.check("DATA", 354)
        c.send(BODY + ".\r\n")
        rec = reception(self.server, queued_id(c.reply()))
        self.assertEqual(len(rec["recipients"]), 3)

    def test_data_line_limit(self):
        c = self.connect()
        queued_id(c.message(body=BODY + "z" * 998 + "\r\n"))  # 1000 octets with CRLF: fine
        r = c.message(body=BODY + "z" * 999 + "\r\n")
        self.assertEqual((r.code, r.enhanced), (550, "5.6.0"), c.transcript)

    def test_bare_lf_in_content_refused(self):
        c = self.connect(ehlo="barelf.example")
        r = c.message(body="Subject: x\r\n\r\none\ntwo\r\n")
        self.assertEqual((r.code, r.enhanced), (550, "5.6.0"), c.transcript)
        recs, sentinel = self.receptions_by_helo(c, "barelf.example")
        self.assertEqual([r["id"] for r in recs], [sentinel])

    def test_nul_in_content_refused(self):
        c = self.connect(ehlo="nul.example")
        r = c.message(body="Subject: x\r\n\r\none\0two\r\n")
        self.assertEqual((r.code, r.enhanced), (550, "5.6.0"), c.transcript)
        self.assertIn("NUL", r.text)
        recs, sentinel = self.receptions_by_helo(c, "nul.example")
        self.assertEqual([r["id"] for r in recs], [sentinel])

    def test_envid_and_orcpt_must_decode_to_printable_text(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org> ENVID=x+0D+0ABcc:+20evil@example.net", 501, "5.5.4")
        c.check("MAIL FROM:<a@example.org> ENVID=ok", 250, "2.1.0")
        c.check("RCPT TO:<b@example.net> ORCPT=rfc822;b@example.net+0D+0AX-Evil:+201", 501,
                "5.5.4")

    def test_mail_loop_refused_after_50_hops(self):
        c = self.connect()
        hops = "".join(f"Received: from h{i}.example by h{i + 1}.example; "
                       f"Mon, 30 Nov 2026 10:00:00 +0000\r\n" for i in range(51))
        r = c.message(body=hops + "Subject: loop\r\n\r\nx\r\n")
        self.assertEqual((r.code, r.enhanced), (554, "5.4.6"), c.transcript)
        queued_id(c.message(body=hops.split("\r\n", 1)[1] + "Subject: 50 hops\r\n\r\nx\r\n"))

    def test_bare_cr_in_content_refused(self):
        c = self.connect()
        r = c.message(body="Subject: x\r\n\r\none\rtwo\r\n")
        self.assertEqual((r.code, r.enhanced), (550, "5.6.0"), c.transcript)

    def test_smuggling_is_one_refused_message(self):
        smuggled = ("MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.net>\r\n"
                    "DATA\r\nSubject: smuggled\r\n\r\nevil\r\n")
        for i, end in enumerate(["\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r"]):
            with self.subTest(end=end):
                helo = f"smuggle{i}.example"
                c = self.connect(ehlo=helo)
                r = c.message(body="Subject: hi\r\n\r\nhello" + end + smuggled)
                self.assertEqual((r.code, r.enhanced), (550, "5.6.0"), c.transcript)
                c.check("NOOP", 250, "2.0.0")  # no reply was left over for the smuggled commands
                recs, sentinel = self.receptions_by_helo(c, helo)
                self.assertEqual([r["id"] for r in recs], [sentinel], recs)
                self.assertFalse([r for r in self.server.log_records("Reception")
                                  if r["sender"] == "evil@attacker.example"])

    def test_utf8_address_needs_smtputf8(self):
        c = self.connect()
        c.check("MAIL FROM:<jörg@example.org>", 553, "5.6.7")
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("RCPT TO:<用@例.example>", 553, "5.6.7")

    def test_utf8_address_with_smtputf8(self):
        c = self.connect()
        r = c.message(sender="jörg@example.org", rcpts=("用@例.example",),
                      mail_params=" SMTPUTF8")
        rec = reception(self.server, queued_id(r))
        self.assertEqual(rec["sender"], "jörg@example.org")
        self.assertEqual(rec["recipients"], ["用@例.example"])
        self.assertTrue(rec["protocol"].startswith("UTF8SMTP"), rec)

    def test_dsn_parameters(self):
        with smtp(self.port) as s:
            s.sendmail("a@example.org", ["b@example.net"], BODY,
                       mail_options=["RET=HDRS", "ENVID=abc"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;x@y"])
        recs = wait_records(self.server, lambda r: r.get("envid") == "abc", "ENVID=abc")
        self.assertEqual(recs[0]["recipients"], ["b@example.net"])

    def test_dsn_parameters_each_250(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org> RET=FULL ENVID=xyz", 250, "2.1.0")
        c.check("RCPT TO:<b@example.net> NOTIFY=NEVER ORCPT=rfc822;b@example.net", 250, "2.1.5")

    def test_8bitmime_body(self):
        body = "Subject: 8bit\r\nMessage-ID: <8bit@client.example>\r\n\r\nGrüße, naïve café\r\n"
        with smtp(self.port) as s:
            s.sendmail("a@example.org", ["b@example.net"], body.encode(),
                       mail_options=["BODY=8BITMIME"])
        rec = wait_records(self.server, lambda r: r.get("message_id") == "<8bit@client.example>",
                           "the 8BITMIME message")[0]
        self.assertEqual(rec["sender"], "a@example.org")

    # Pipelining and chunking.
    def test_pipelined_transaction_in_one_send(self):
        c = self.connect(ehlo=None)
        c.send("EHLO pipe.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
               "RCPT TO:<c@example.net>\r\nDATA\r\n" + BODY + ".\r\n"
               "MAIL FROM:<d@example.org>\r\nRCPT TO:<e@example.net>\r\nDATA\r\n" + BODY +
               ".\r\nQUIT\r\n")
        c.expect(250), c.expect(250, "2.1.0"), c.expect(250, "2.1.5"), c.expect(250, "2.1.5")
        c.expect(354)
        first = queued_id(c.expect(250, "2.0.0"))
        c.expect(250, "2.1.0"), c.expect(250, "2.1.5"), c.expect(354)
        second = queued_id(c.expect(250, "2.0.0"))
        c.expect(221, "2.0.0")
        self.assertTrue(c.closed())
        self.assertEqual(reception(self.server, first)["recipients"],
                         ["b@example.net", "c@example.net"])
        self.assertEqual(reception(self.server, second)["sender"], "d@example.org")

    def test_bdat_chunks(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("RCPT TO:<b@example.net>", 250, "2.1.5")
        part1, part2 = b"Subject: chunked\r\n\r\n", b"Hello in two chunks.\r\n"
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        c.expect(250, "2.0.0", f"^{len(part1)} octets received$")
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        rec = reception(self.server, queued_id(c.reply()))
        self.assertGreater(rec["size"], len(part1) + len(part2))

    def test_bdat_pipelined(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
               b"BDAT 5\r\nabc\r\nBDAT 3 LAST\r\nd\r\nNOOP\r\n")
        c.expect(250, "2.1.0"), c.expect(250, "2.1.5"), c.expect(250, "2.0.0", "^5 octets")
        queued_id(c.reply())
        c.expect(250, "2.0.0")

    def test_bdat_without_mail_refused_and_chunk_skipped(self):
        c = self.connect()
        c.send(b"BDAT 6\r\nFROB\r\n")  # the chunk is not a command
        c.expect(503, "5.5.1")
        c.check("NOOP", 250, "2.0.0")

    def test_bdat_over_limit(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.check("RCPT TO:<b@example.net>", 250, "2.1.5")
        chunk = b"x" * 15000
        c.send(b"BDAT 15000\r\n" + chunk)
        c.expect(250, "2.0.0")
        c.send(b"BDAT 15000 LAST\r\n" + chunk)
        c.expect(552, "5.3.4")

    # STARTTLS without AUTH: loopback is a client network.
    def test_starttls_then_message(self):
        with smtp(self.port, helo="tls.example") as s:
            s.starttls(context=tls_context())
            s.ehlo("tls.example")
            self.assertFalse(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"))
            s.sendmail("a@example.org", ["b@example.net"],
                       "Message-ID: <tls@client.example>\r\n" + BODY)
        rec = wait_records(self.server, lambda r: r.get("message_id") == "<tls@client.example>",
                           "the message sent under TLS")[0]
        self.assertEqual(rec["protocol"], "ESMTPS")
        self.assertIs(rec["tls"], True)
        self.assertNotIn("auth_user", rec)

    def test_starttls_drops_pipelined_plaintext(self):
        c = self.connect()
        c.send("STARTTLS\r\nNOOP\r\n")
        c.expect(220, "2.0.0")
        c.starttls()
        c.check("EHLO client.example", 250, None, f"^{HOST} greets client.example")
        c.check("MAIL FROM:<a@example.org>", 250, "2.1.0")

    # swaks.
    def test_swaks_plain(self):
        qid, mid, out = swaks(self.port, "--ehlo", "swaks.example")
        rec = reception(self.server, qid)
        self.assertEqual((rec["sender"], rec["recipients"]), ("swaks@example.org",
                                                              ["rcpt@example.net"]))
        self.assertEqual((rec["helo"], rec["protocol"], rec["tls"]),
                         ("swaks.example", "ESMTP", False))
        self.assertEqual(rec["message_id"], mid)

    def test_swaks_pipeline(self):
        qid, _, out = swaks(self.port, "--pipeline")
        self.assertIn("250-PIPELINING", out)
        self.assertEqual(reception(self.server, qid)["sender"], "swaks@example.org")

    def test_swaks_starttls(self):
        qid, _, _ = swaks(self.port, "--tls")
        rec = reception(self.server, qid)
        self.assertEqual((rec["protocol"], rec["tls"]), ("ESMTPS", True))


class ErrorLimit(ServerCase):
    SMTP = {"max_errors": 3, "max_message_size": "2MB"}

    def test_size_with_unit_advertised(self):
        r = self.connect(ehlo=None).check("EHLO client.example", 250)
        self.assertIn("SIZE 2000000", r.text.split("\n"))

    def check_limit(self, bad_command, code, enhanced):
        c = self.connect()
        for _ in range(3):
            c.check(bad_command, code, enhanced)
        c.expect(421, "4.7.0", "too many errors")
        self.assertTrue(c.closed())

    def test_unrecognized_commands(self):
        self.check_limit("FROB", 500, "5.5.1")

    def test_out_of_sequence_commands(self):
        self.check_limit("RCPT TO:<b@example.net>", 503, "5.5.1")


class Timeouts(ServerCase):
    SMTP = {"command_timeout": "1s", "data_timeout": "1s"}

    def test_idle_client_is_disconnected(self):
        c = self.connect()
        c.expect(421, "4.4.2", "timeout exceeded")
        self.assertTrue(c.closed())

    def test_idle_in_data_is_disconnected(self):
        c = self.connect()
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: x\r\n")
        c.expect(250, "2.1.0"), c.expect(250, "2.1.5"), c.expect(354)
        c.expect(421, "4.4.2", "timeout exceeded")
        self.assertTrue(c.closed())


def trickle(c, data):
    """Sends data a byte every 0.2 s (bounded by its length) until the server says something."""
    for i in range(len(data)):
        try:
            c.sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return
        if select.select([c.sock], [], [], 0.2)[0]:
            return


class SlowClient(ServerCase):
    SMTP = {"command_timeout": "1s"}

    def test_a_command_trickled_a_byte_at_a_time_meets_the_deadline(self):
        """Each byte comes well within the timeout, but the command never ends: the timeout
        bounds the whole command, so the session ends after about a second, not after the
        minute of trickling the client would go on for."""
        c = self.connect()
        trickle(c, b"NOOP " + b"x" * 300)
        c.expect(421, "4.4.2", "timeout exceeded")
        self.assertTrue(c.closed())


class SlowData(ServerCase):
    SMTP = {"data_timeout": "1s"}

    def test_message_content_trickled_a_byte_at_a_time_meets_the_deadline(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.org>", 250)
        c.check("RCPT TO:<b@example.net>", 250)
        c.check("DATA", 354)
        trickle(c, b"Subject: slow\r\n\r\n" + b"x" * 300)
        c.expect(421, "4.4.2", "timeout exceeded")
        self.assertTrue(c.closed())


class ConnectionLimitCase(ServerCase):
    REFUSAL = ""

    def admitted_again(self):
        """After a client quits, a new connection is admitted. The server counts the session
        out just after it closes the socket, so a connection may race that: retry, bounded."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            c = Client(self.port)
            self.addCleanup(c.close)
            if c.banner.code == 220 or time.monotonic() > deadline:
                return c
            c.close()

    def check_limit(self):
        first, second = self.connect(), self.connect()
        third = Client(self.port)
        self.addCleanup(third.close)
        self.assertEqual((third.banner.code, third.banner.enhanced), (421, "4.7.0"),
                         third.transcript)
        self.assertIn(self.REFUSAL, third.banner.text)
        self.assertTrue(third.closed())
        first.check("QUIT", 221, "2.0.0")
        self.assertTrue(first.closed())
        fourth = self.admitted_again()
        self.assertEqual(fourth.banner.code, 220, fourth.transcript)
        second.check("NOOP", 250, "2.0.0")


class PerIpLimit(ConnectionLimitCase):
    SMTP = {"max_connections_per_ip": 2, "max_connections": 10}
    REFUSAL = "Too many concurrent connections from this IP, try again later"

    def test_third_connection_from_one_ip_refused(self):
        self.check_limit()


class TotalLimit(ConnectionLimitCase):
    SMTP = {"max_connections": 2, "max_connections_per_ip": 10}
    REFUSAL = "Too many connections"

    def test_third_connection_refused(self):
        self.check_limit()


class RelayDenied(ServerCase):
    SMTP = {"client_networks": ["10.0.0.0/8"]}

    def test_mail_from_outside_client_networks(self):
        self.connect().check("MAIL FROM:<a@example.org>", 550, "5.7.1")


class Submission(ServerCase):
    """Outside the client networks, with TLS and credentials: AUTH after STARTTLS is the way."""
    SMTP = {"client_networks": ["10.0.0.0/8"]}
    TLS = True
    CREDENTIALS = True

    def test_ehlo_before_tls_offers_starttls_not_auth(self):
        r = self.connect(ehlo=None).check("EHLO client.example", 250)
        keywords = r.text.split("\n")[1:]
        self.assertIn("STARTTLS", keywords)
        self.assertFalse([k for k in keywords if k.startswith("AUTH")], keywords)

    def test_auth_before_starttls(self):
        ir = base64.b64encode(b"\0alice\0s3cret").decode()
        self.connect().check(f"AUTH PLAIN {ir}", 538, "5.7.11")

    def test_mail_without_auth(self):
        self.connect().check("MAIL FROM:<a@example.org>", 530, "5.7.0")

    def test_mail_under_tls_without_auth(self):
        c = self.connect()
        c.check("STARTTLS", 220, "2.0.0")
        c.starttls()
        r = c.check("EHLO client.example", 250)
        keywords = r.text.split("\n")[1:]
        self.assertIn("AUTH PLAIN LOGIN", keywords)
        self.assertNotIn("STARTTLS", keywords)
        c.check("MAIL FROM:<a@example.org>", 530, "5.7.0")

    def send_authenticated(self, mechanism, password="s3cret"):
        with smtp(self.port, helo="submit.example") as s:
            s.starttls(context=tls_context())
            s.ehlo("submit.example")
            s.user, s.password = "alice", password
            auth = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[mechanism]
            s.auth(mechanism, auth, initial_response_ok=(mechanism == "PLAIN"))
            mid = f"<{mechanism.lower()}@client.example>"
            s.sendmail("alice@example.org", ["b@example.net"], f"Message-ID: {mid}\r\n" + BODY)
        return wait_records(self.server, lambda r: r.get("message_id") == mid, mid)[0]

    def check_authenticated(self, rec):
        self.assertEqual(rec["auth_user"], "alice")
        self.assertEqual(rec["protocol"], "ESMTPSA")
        self.assertIs(rec["tls"], True)

    def test_auth_plain(self):
        self.check_authenticated(self.send_authenticated("PLAIN"))

    def test_auth_login(self):
        self.check_authenticated(self.send_authenticated("LOGIN"))

    def check_wrong_password(self, mechanism):
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            self.send_authenticated(mechanism, password="wrong")
        self.assertEqual(e.exception.smtp_code, 535)
        self.assertTrue(e.exception.smtp_error.startswith(b"5.7.8"), e.exception)

    def test_wrong_password_plain(self):
        self.check_wrong_password("PLAIN")

    def test_wrong_password_login(self):
        self.check_wrong_password("LOGIN")

    def test_swaks_auth_plain(self):
        qid, _, _ = swaks(self.port, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                          "--auth-password", "s3cret")
        self.check_authenticated(reception(self.server, qid))

    def test_swaks_auth_login(self):
        qid, _, _ = swaks(self.port, "--tls", "--auth", "LOGIN", "--auth-user", "alice",
                          "--auth-password", "s3cret")
        self.check_authenticated(reception(self.server, qid))


class SenderLogins(ServerCase):
    """[smtp.senders]: an authenticated user sends only as the addresses it owns."""
    SMTP = {"client_networks": ["10.0.0.0/8"],
            "senders": {"alice": ["alice@example.org", "@alice.example"]}}
    TLS = True
    CREDENTIALS = True

    def test_mail_from_is_tied_to_the_login(self):
        c = self.logged_in()
        c.check("MAIL FROM:<bob@example.org>", 553, "5.7.1", "not owned by user alice")
        c.check("MAIL FROM:<news@alice.example>", 250, "2.1.0")
        c.check("RSET", 250)
        c.check("MAIL FROM:<>", 250, "2.1.0")


class LoginTenants(ServerCase):
    """[tenant.X] users: an authenticated login sends as its tenant, whatever X-Tenant says
    (that the tag headers never leave is shown at the receiver: test_egress)."""
    SMTP = {"client_networks": ["10.0.0.0/8"]}
    TLS = True
    CREDENTIALS = True
    EXTRA = '[tenant.acme]\nusers = ["alice"]\n'

    def test_the_login_decides_the_tenant_and_the_tags_are_removed(self):
        c = self.logged_in()
        qid = queued_id(c.message(body="X-Tenant: someone-else\r\nX-Campaign: fall\r\n"
                                       "Subject: t\r\n\r\nx\r\n"))
        rec = reception(self.server, qid)
        self.assertEqual(rec["tenant"], "acme")
        self.assertEqual(rec["campaign"], "fall")


class AuthGuessing(ServerCase):
    """Password guessing from one address: after auth_max_failures failed AUTHs it is refused
    AUTH (421, session closed) for the rest of the window, even with the right password."""
    SMTP = {"client_networks": ["10.0.0.0/8"], "auth_max_failures": 3}
    TLS = True
    CREDENTIALS = True

    def attempt(self, password):
        c = self.connect()
        c.check("STARTTLS", 220, "2.0.0")
        c.starttls()
        c.check("EHLO guesser.example", 250)
        ir = base64.b64encode(b"\0alice\0" + password.encode()).decode()
        c.send(f"AUTH PLAIN {ir}\r\n")
        return c, c.reply()

    def test_guessing_is_locked_out(self):
        for i in range(3):
            c, r = self.attempt(f"guess{i}")
            self.assertEqual((r.code, r.enhanced), (535, "5.7.8"), c.transcript)
        c, r = self.attempt("s3cret")  # the right one, too late
        self.assertEqual((r.code, r.enhanced), (421, "4.7.0"), c.transcript)
        self.assertIn("too many failed authentication attempts", r.text)
        self.assertTrue(c.closed())


class Spool(unittest.TestCase):
    def test_accepted_messages_spooled_refused_not(self):
        server = harness.Sluice(smtp={"max_message_size": 10000}).start()
        self.addCleanup(server.close)
        c = Client(server.port)
        self.addCleanup(c.close)
        c.check("EHLO spool.example", 250)
        a = queued_id(c.message(sender="s1@example.org", rcpts=("r1@example.net",)))
        self.assertEqual(c.message(body="Subject: x\r\n\r\nbare\nlf\r\n").code, 550)
        self.assertEqual(c.message(body=BODY + ("y" * 98 + "\r\n") * 120).code, 552)
        b = queued_id(c.message(sender="s2@example.org", rcpts=("r2@example.net",
                                                                 "r3@example.net")))
        c.check("QUIT", 221, "2.0.0")
        logged = {qid: reception(server, qid) for qid in (a, b)}
        self.assertEqual(server.stop(), 0)
        spooled = {m["id"]: m for m in server.spool_ls()}
        self.assertEqual(set(spooled), {a, b})
        for qid, rec in logged.items():
            m = spooled[qid]
            self.assertEqual((m["sender"], m["recipients"], m["size"]),
                             (rec["sender"], rec["recipients"], rec["size"]))


if __name__ == "__main__":
    unittest.main()
