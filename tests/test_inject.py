"""End-to-end tests of the HTTP injection API (POST /api/inject/v1, KumoMTA's shape): KumoMTA's
own documented example requests go in and arrive at a real receiver as the messages they
describe; the answer comes after the spool has them; bad JSON, bad content, oversize bodies and
missing or wrong bearer tokens get clear 4xx answers and inject nothing.
"""
import json
import unittest
import urllib.error
import urllib.request

import harness
from receiver import Receiver
from test_shaping import sluice_cli

BASIC = {  # docs.kumomta.com, "Injecting Using HTTP"
    "envelope_sender": "noreply@example.com",
    "content": "Subject: hello\n\nHello there",
    "recipients": [{"email": "recipient@rx.test"}],
}

BUILDER = {  # docs.kumomta.com, "POST /api/inject/v1", the builder example (addresses ours)
    "envelope_sender": "noreply@example.com",
    "content": {
        "text_body": "This is the plain text part for {{ name }}",
        "html_body": "<p>This is the <b>HTML</b> part for {{ name }}</p>",
        "attachments": [{"data": "aGVsbG8K", "base64": True, "content_type": "text/plain",
                         "file_name": "hello.txt"}],
        "headers": {"X-Greeting": "hi {{ name }}"},
        "from": {"email": "someone@example.com", "name": "Someone Sending"},
        "subject": "hello {{ name }}",
        "reply_to": {"email": "help@example.com", "name": "Help"},
    },
    "recipients": [
        {"email": "one@rx.test", "name": "One", "substitutions": {"name": "Ann & <Bob>"}},
        {"email": "two@rx.test"},
    ],
    "substitutions": {"name": "friend"},
    "tenant": "acme",
    "campaign": "spring",
}


def message_to(rx, address):
    """The accepted transaction for `address`, once the receiver has it (bounded)."""
    def find(r):
        return [t for t in r.transactions if t.end == "done" and address in t.accepted]
    rx.wait_for(find, what=f"a message to {address}")
    return find(rx)[0]


def post(server, body, token=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{server.http_port}/api/inject/v1", data=data,
                                 method="POST", headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=harness.TIMEOUT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Inject(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver().start()
        cls.server = harness.Sluice(queue={"hold": False},
                                    routes={"rx.test": {"host": "127.0.0.1", "port": cls.rx.port}},
                                    extra='[tenant.acme]\npool = "default"\n')
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.rx.stop()

    def test_kumomta_basic_example(self):
        status, body = post(self.server, BASIC)
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"success_count": 1, "fail_count": 0, "failed_recipients": [],
                                "errors": []})
        msg = message_to(self.rx, "recipient@rx.test")
        self.assertEqual(msg.mail_from, "noreply@example.com")
        self.assertIn(b"Subject: hello\r\n", msg.data)
        self.assertIn(b"\r\n\r\nHello there\r\n", msg.data)
        self.assertIn(b"with HTTP", msg.data)  # its Received header
        [rec] = self.server.wait_records(lambda r: r.get("event") == "Reception"
                                         and r["recipients"] == ["recipient@rx.test"], "reception")
        self.assertEqual(rec["protocol"], "HTTP")

    def test_kumomta_builder_example_one_message_per_recipient(self):
        status, body = post(self.server, BUILDER)
        self.assertEqual((status, body["success_count"], body["fail_count"]), (200, 2, 0), body)
        one = message_to(self.rx, "one@rx.test")
        two = message_to(self.rx, "two@rx.test")
        self.assertIn(b"Subject: hello Ann & <Bob>\r\n", one.data)
        self.assertIn(b"To: \"One\" <one@rx.test>\r\n", one.data)
        self.assertIn(b"From: \"Someone Sending\" <someone@example.com>\r\n", one.data)
        self.assertIn(b"part for Ann &amp; &lt;Bob&gt;</p>", one.data)  # escaped in HTML only
        self.assertIn(b"plain text part for Ann & <Bob>", one.data)
        self.assertIn(b"filename=\"hello.txt\"", one.data)
        self.assertIn(b"Subject: hello friend\r\n", two.data)
        tagged = self.server.wait_records(None, "both deliveries", select_all=lambda recs: [
            r for r in recs if r.get("event") == "Delivery"
            and r["recipient"] in ("one@rx.test", "two@rx.test")] if sum(
            r.get("event") == "Delivery" and r["recipient"] in ("one@rx.test", "two@rx.test")
            for r in recs) == 2 else [])
        for r in tagged:
            self.assertEqual((r["tenant"], r["campaign"]), ("acme", "spring"))

    def test_bad_requests_get_clear_4xx_and_inject_nothing(self):
        before = len(self.server.log_records("Reception"))
        status, body = post(self.server, None, raw=b"{this is not json")
        self.assertEqual(status, 400)
        self.assertIn("not JSON", body["errors"][0])
        status, body = post(self.server, {"envelope_sender": "a@example.org", "content": "x",
                                          "recipients": [{"email": "ok@rx.test"},
                                                         {"email": "not an address"}]})
        self.assertEqual(status, 422)
        self.assertEqual(body["success_count"], 0)
        status, body = post(self.server, {"envelope_sender": "a@example.org",
                                          "recipients": [{"email": "ok@rx.test"}],
                                          "content": {"headers": {"X-A": "v\r\nBcc: x@rx.test"}}})
        self.assertEqual(status, 422)
        self.assertIn("line breaks", body["errors"][0])
        status, body = post(self.server, {"envelope_sender": "a@example.org",
                                          "recipients": [{"email": "ok@rx.test"}],
                                          "content": "Subject: x\n\n" + "a" * 1200 + "\n"})
        self.assertEqual(status, 422)
        self.assertIn("998", body["errors"][0])
        status, body = post(self.server, {"envelope_sender": "a@example.org",
                                          "recipients": [{"email": "ok@rx.test"}],
                                          "content": "{% if x %}y{% endif %}"})
        self.assertEqual(status, 422)
        # A sentinel after them: once its Reception is logged, anything they had injected
        # would be too.
        sentinel = dict(BASIC, recipients=[{"email": "sentinel@rx.test"}])
        self.assertEqual(post(self.server, sentinel)[0], 200)
        self.server.wait_records(lambda r: r.get("event") == "Reception"
                                 and r["recipients"] == ["sentinel@rx.test"], "the sentinel")
        self.assertEqual(len(self.server.log_records("Reception")), before + 1)

    def test_only_post_and_no_other_method(self):
        req = urllib.request.Request(f"http://127.0.0.1:{self.server.http_port}/api/inject/v1")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=harness.TIMEOUT)
        self.assertEqual(e.exception.code, 405)


class InjectLimitsAndTokens(unittest.TestCase):
    def test_oversize_bodies_and_tokens(self):
        server = harness.Sluice(smtp={"max_message_size": "10KB"})
        # The token goes into [http] next to the listener the harness writes.
        with open(server.config) as f:
            text = f.read()
        text = text.replace("[http]\n", '[http]\napi_token = "s3cret-token"\n', 1)
        with open(server.config, "w") as f:
            f.write(text)
        server.start()
        try:
            status, body = post(server, BASIC)
            self.assertEqual(status, 401)
            self.assertIn("Bearer", body["error"])
            status, _ = post(server, BASIC, token="wrong-token!")
            self.assertEqual(status, 401)
            status, body = post(server, BASIC, token="s3cret-token")
            self.assertEqual(status, 200, body)
            # The body limit is about twice the message size limit (base64 in JSON): beyond
            # it, 413 and nothing more injected.
            big = dict(BASIC, content="Subject: big\n\n" + ("y" * 900 + "\n") * 1200)
            status, body = post(server, big, token="s3cret-token")
            self.assertEqual(status, 413)
            self.assertIn("octets", body["error"])
            # Over the message size, within the body limit: 422.
            fat = dict(BASIC, content="Subject: fat\n\n" + ("z" * 900 + "\n") * 12)
            status, body = post(server, fat, token="s3cret-token")
            self.assertEqual(status, 422)
            server.wait_count("Reception", 1)
            self.assertEqual(len(server.log_records("Reception")), 1)
            # /healthz needs no token; the admin API and the CLI do.
            with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/healthz",
                                        timeout=harness.TIMEOUT) as r:
                self.assertEqual(r.status, 200)
            out = sluice_cli("queue", "sites", "--http", f"127.0.0.1:{server.http_port}")
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("401", out.stderr)
            out = sluice_cli("queue", "sites", "--config", server.config)  # the config's token
            self.assertEqual(out.returncode, 0, out.stderr)
        finally:
            server.close()


if __name__ == "__main__":
    unittest.main()
