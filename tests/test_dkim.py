"""End-to-end tests of DKIM signing: sluice signs as mail enters the spool, and independent
verifiers accept what a receiver gets — Python's dkimpy (Debian's python3-dkim, run by Debian's
python3) and OpenDKIM's opendkim-testmsg (Debian's opendkim-tools), which looks the keys up in
DNS: a dnsmasq serving the test's TXT records on 127.0.0.77:53, made the resolver by
bind-mounting a resolv.conf in a mount namespace of its own.

Both algorithms (RSA-SHA256, Ed25519-SHA256) and both canonicalizations, on messages with
folded headers, 8-bit bodies, empty bodies, trailing blank lines and long lines, over SMTP and
the injection API; a message deferred after its content was sent, then sent again after a
restart, carries the identical signature.
"""
import base64
import json
import os
import smtplib
import subprocess
import tempfile
import unittest
import urllib.request

import dnsfixture
import harness
from receiver import Receiver

VERIFY = r"""
import dkim, json, sys
keys = json.loads(sys.argv[1])
def dns(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    t = keys.get(n.rstrip("."))
    return t.encode() if t else None
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
count = sum(1 for k, v in d.headers if k.lower() == b"dkim-signature")
def verify(i):
    try:
        return bool(d.verify(idx=i, dnsfunc=dns))
    except dkim.ValidationError:
        return False
print(json.dumps([verify(i) for i in range(count)]))
"""

# (domain, algorithm, canonicalization)
SIGNERS = [("rr-rsa.test", "rsa", "relaxed/relaxed"), ("ss-rsa.test", "rsa", "simple/simple"),
           ("rr-ed.test", "ed25519", "relaxed/relaxed"), ("ss-ed.test", "ed25519", "simple/simple")]

MESSAGES = {
    "folded": "Subject: a subject folded\r\n over\r\n\tthree lines\r\nTo: x@rx.test\r\n\r\nhello\r\n",
    "8bit": "Subject: caf\u00e9\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nd\u00e9j\u00e0 vu \u2014 \u00fcber\r\n",
    "empty": "Subject: nothing\r\n\r\n",
    "trailing": "Subject: blank lines\r\n\r\nbody\r\n\r\n\r\n\r\n",
    "long": "Subject: long\r\n\r\n" + ("x" * 990) + "\r\n" + "y  \t z \r\n",
    "spaces": "Subject:   many    spaces   \r\n\r\n  indented \t line\t \r\n",
}


def make_key(directory, name, algorithm):
    """A private key file and the DKIM TXT record of its public key."""
    path = os.path.join(directory, name + ".pem")
    args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if algorithm == "rsa" \
        else ["-algorithm", "ed25519"]
    subprocess.run(["openssl", "genpkey", *args, "-out", path], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    # RSA: the SubjectPublicKeyInfo; Ed25519: the raw 32-octet key (RFC 8463 section 4).
    p = base64.b64encode(der if algorithm == "rsa" else der[-32:]).decode()
    return path, f"v=DKIM1; k={algorithm}; p={p}"


def transactions(rx, pred):
    """Waits until the receiver has a transaction pred accepts; returns those it has."""
    rx.wait_for(lambda r: any(pred(t) for t in r.transactions))
    return [t for t in rx.transactions if pred(t)]


def dkimpy(message, keys):
    out = subprocess.run(["/usr/bin/python3", "-c", VERIFY, json.dumps(keys)], input=message,
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


class Signing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sluice-dkim-")
        cls.keys = {}  # "sel._domainkey.domain" -> TXT
        extra = ""
        for domain, algorithm, canon in SIGNERS:
            path, record = make_key(cls.tmp.name, domain, algorithm)
            cls.keys[f"s1._domainkey.{domain}"] = record
            extra += (f'[dkim."{domain}"]\nselector = "s1"\nkey = "{path}"\n'
                      f'canonicalization = "{canon}"\n\n')
        # One domain signed by both algorithms (RFC 8463's advice while verifiers catch up).
        rsa, rsa_txt = make_key(cls.tmp.name, "both-rsa", "rsa")
        ed, ed_txt = make_key(cls.tmp.name, "both-ed", "ed25519")
        cls.keys["rsa1._domainkey.both.test"] = rsa_txt
        cls.keys["ed1._domainkey.both.test"] = ed_txt
        extra += (f'[dkim."both.test"]\nselector = "rsa1"\nkey = "{rsa}"\n'
                  f'also = [{{ selector = "ed1", key = "{ed}" }}]\n')
        cls.rx = Receiver().start()
        cls.server = harness.Sluice(queue={"hold": False, "min_backoff": "1s", "max_backoff": "1s"},
                                    routes={"rx.test": {"host": "127.0.0.1", "port": cls.rx.port}},
                                    extra=extra)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.rx.stop()
        cls.tmp.cleanup()

    def send(self, sender, body, rcpt):
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=harness.TIMEOUT) as s:
            s.ehlo("client.test")
            s.sendmail(sender, [rcpt], body.encode("utf-8"), mail_options=["BODY=8BITMIME"])
        [txn] = transactions(self.rx, lambda t: rcpt in t.accepted and t.end == "done")
        return txn.data

    def opendkim(self, message):
        """opendkim-testmsg's verdict: "" when it verified, its complaint otherwise."""
        records = [dnsfixture.txt(name, text) for name, text in self.keys.items()]
        with dnsfixture.DnsServer(records, address="127.0.0.77", port=53) as dns, \
                tempfile.NamedTemporaryFile("w", suffix=".conf") as resolv:
            resolv.write(f"nameserver {dns.address}\noptions timeout:2 attempts:1\n")
            resolv.flush()
            out = subprocess.run(["unshare", "--mount", "sh", "-c",
                                  f"mount --bind {resolv.name} /etc/resolv.conf && "
                                  "exec opendkim-testmsg"],
                                 input=message, capture_output=True, timeout=60)
        return "" if out.returncode == 0 else (out.stderr.decode() + out.stdout.decode() or
                                               f"exit {out.returncode}")

    def test_every_algorithm_and_canonicalization_verifies_on_awkward_messages(self):
        n = 0
        for domain, algorithm, canon in SIGNERS:
            for name, body in MESSAGES.items():
                n += 1
                rcpt = f"m{n}@rx.test"
                data = self.send(f"news@{domain}", f"From: News <news@{domain}>\r\n" + body, rcpt)
                with self.subTest(domain=domain, message=name):
                    self.assertIn(f"a={algorithm}-sha256; c={canon}; d={domain}; s=s1;".encode(), data)
                    self.assertEqual(dkimpy(data, self.keys), [True])
                    self.assertEqual(self.opendkim(data), "")

    def test_both_algorithms_on_one_message_and_a_subdomain_sender(self):
        data = self.send("a@mail.both.test", "From: <a@mail.both.test>\r\nSubject: two\r\n\r\nx\r\n",
                         "two@rx.test")
        self.assertEqual(data.count(b"DKIM-Signature:"), 2)
        self.assertIn(b"a=rsa-sha256", data)
        self.assertIn(b"a=ed25519-sha256", data)
        self.assertIn(b"d=both.test", data)
        self.assertEqual(dkimpy(data, self.keys), [True, True])

    def test_injected_mail_is_signed_and_unknown_domains_are_not(self):
        body = {"envelope_sender": "news@rr-ed.test", "recipients": [{"email": "inj@rx.test"}],
                "content": {"from": {"email": "news@rr-ed.test", "name": "News"},
                            "subject": "Injected", "text_body": "hello {{ name }}\n",
                            "html_body": "<p>hello</p>"}}
        req = urllib.request.Request(f"http://127.0.0.1:{self.server.http_port}/api/inject/v1",
                                     data=json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=harness.TIMEOUT) as r:
            self.assertEqual(json.loads(r.read())["success_count"], 1)
        [txn] = transactions(self.rx, lambda t: "inj@rx.test" in t.accepted and t.end == "done")
        self.assertEqual(dkimpy(txn.data, self.keys), [True])
        plain = self.send("a@unsigned.test", "From: a@unsigned.test\r\nSubject: s\r\n\r\nx\r\n",
                          "plain@rx.test")
        self.assertNotIn(b"DKIM-Signature", plain)


class SignedOnceForEveryRetry(unittest.TestCase):
    def test_a_message_sent_again_after_a_restart_carries_the_identical_signature(self):
        with tempfile.TemporaryDirectory(prefix="sluice-dkim-") as tmp:
            key, txt = make_key(tmp, "k", "rsa")
            keys = {"s1._domainkey.retry.test": txt}
            rx = Receiver(data_reply="451 4.3.0 try again later").start()
            extra = f'[dkim."retry.test"]\nselector = "s1"\nkey = "{key}"\n'
            routes = {"rx.test": {"host": "127.0.0.1", "port": rx.port}}
            queue = {"hold": False, "min_backoff": "2s", "max_backoff": "2s"}
            first = harness.Sluice(queue=queue, routes=routes, extra=extra)
            second = None
            try:
                first.start()
                with smtplib.SMTP("127.0.0.1", first.port, timeout=harness.TIMEOUT) as s:
                    s.sendmail("a@retry.test", ["r@rx.test"],
                               "From: a@retry.test\r\nSubject: again\r\n\r\nonce\r\n")
                [refused] = transactions(rx, lambda t: t.end == "done")
                first.kill()  # no graceful anything: the spool is what remains
                rx.data_reply = None
                second = harness.Sluice(directory=first.dir, queue=queue, routes=routes, extra=extra)
                second.start()
                delivered = transactions(
                    rx, lambda t: t.end == "done" and t.reply.startswith("250"))[0]

                def signature(data):
                    head = data.split(b"\r\n\r\n", 1)[0]
                    start = head.index(b"DKIM-Signature:")
                    end = head.index(b"\r\n", start)
                    while head[end + 2:end + 3] in (b" ", b"\t"):
                        end = head.index(b"\r\n", end + 2)
                    return head[start:end]
                self.assertEqual(signature(refused.data), signature(delivered.data))
                self.assertEqual(dkimpy(delivered.data, keys), [True])
            finally:
                if second:
                    second.close()
                first.close()
                rx.stop()


if __name__ == "__main__":
    unittest.main()
