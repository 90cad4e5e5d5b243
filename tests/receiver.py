"""An SMTP receiver for delivery tests: asyncio only, in a thread of its own, on a loopback address.

    rx = Receiver(rcpt_replies={"bad@": "550 5.1.1 no such user"}).start()
    ... make sluice deliver to 127.0.0.1:rx.port ...
    [msg] = rx.wait_for_messages(1)
    rx.stop()

Every transaction (from MAIL to its end) is recorded as a Transaction once it ends, in
rx.transactions; tests wait for them with wait_for_messages() or wait_for(). The behaviour options
are plain attributes, read each time they apply, so a test may change them while it runs (say,
data_reply from a 452 to None between two delivery attempts). Commands are read from a buffer and
answered in order, so pipelined commands work whether or not PIPELINING is advertised; a
transaction notes whether its client pipelined.
"""
import asyncio
import dataclasses
import re
import ssl
import threading

TIMEOUT = 10  # seconds: an upper bound for an event, never a performance threshold


@dataclasses.dataclass(frozen=True)
class Rcpt:
    address: str
    params: dict  # {"NOTIFY": "SUCCESS,FAILURE", ...}: keyword (upper case) -> value or None
    reply: str    # the reply this receiver gave


@dataclasses.dataclass
class Transaction:
    client: str              # the client's IP address
    ehlo: str                # the name given in EHLO (or HELO)
    tls: bool                # STARTTLS was done before MAIL
    mail_from: str           # "" for the null sender
    mail_params: dict        # {"SIZE": "123", "BODY": "8BITMIME", "SMTPUTF8": None, ...}
    mail_reply: str
    rcpts: list = dataclasses.field(default_factory=list)  # [Rcpt], refused ones too
    data: bytes = None       # the content un-dot-stuffed, CRLFs kept (partial on hang/drop)
    reply: str = None        # the reply to the final dot
    end: str = None          # "done" (final dot answered), "hang", "drop", or "aborted"
    pipelined: bool = False  # a later command had arrived before a MAIL/RCPT/DATA was answered

    @property
    def accepted(self):
        return [r.address for r in self.rcpts if r.reply.startswith("2")]


class _Closed(Exception):
    pass


class Receiver:
    def __init__(self, address="127.0.0.1", port=0, *, name="rx.test", banner=None, esmtp=True,
                 pipelining=True, eightbitmime=True, smtputf8=False, dsn=False, size=None,
                 tls=None, mail_reply=None, rcpt_replies=None, data_reply=None,
                 hang_after=None, drop_after=None, ehlo_reply=None):
        """tls: (cert, key) paths to offer STARTTLS. Replies are full lines ("550 5.1.1 no")
        and None means the default 250. banner: a non-2xx one ends the session ("421 ...": at
        once; others: 503 to every command but QUIT). esmtp=False: EHLO gets 502 (HELO works).
        ehlo_reply: a reply to EHLO and HELO instead of 250 ("421 ..." closes the session).
        rcpt_replies: {regex searched in the address: reply}, the first match wins.
        hang_after/drop_after: after N bytes of DATA, stop reading and never answer (until
        stop()) / close the connection."""
        self.address, self.port, self.name = address, port, name
        self.banner = banner or f"220 {name} ESMTP test receiver"
        self.esmtp, self.pipelining, self.eightbitmime = esmtp, pipelining, eightbitmime
        self.smtputf8, self.dsn, self.size = smtputf8, dsn, size
        self.mail_reply, self.data_reply = mail_reply, data_reply
        self.rcpt_replies = rcpt_replies or {}
        self.hang_after, self.drop_after = hang_after, drop_after
        self.ehlo_reply = ehlo_reply
        self._tls = None
        if tls:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self.transactions = []  # every ended Transaction, in order
        self.transcript = []    # "<connection number> C: line" / "S: line", for failure messages
        self.connections = self.active = self.peak = 0  # accepted in all, open now, most open
        self.in_data = self.data_peak = 0  # transactions sending their message now, most at once
        self._cond = threading.Condition()
        self._loop = self._thread = None
        self._tasks = set()

    # --- the test's side (any thread) -------------------------------------------------------

    def start(self):
        """Starts listening (returns once it does) and returns self; self.port is the port."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="receiver", daemon=True)
        self._thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Closes the listener and every connection (hung ones too); bounded by TIMEOUT."""
        if not self._thread:
            return
        try:
            if getattr(self, "_server", None):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT)
            self._loop.close()
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_for(self, pred, timeout=TIMEOUT, what="the condition"):
        """Waits until pred(self) is true (checked whenever something is recorded)."""
        with self._cond:
            if not self._cond.wait_for(lambda: pred(self), timeout):
                raise AssertionError(f"timed out waiting for {what}; transactions: "
                                     f"{self.transactions}\ntranscript:\n" +
                                     "\n".join(self.transcript[-60:]))

    def wait_for_messages(self, n, timeout=TIMEOUT):
        """Waits until n transactions reached the final dot (whatever the reply); returns them."""
        self.wait_for(lambda r: len(r.messages) >= n, timeout, f"{n} messages")
        return self.messages

    @property
    def messages(self):
        with self._cond:
            return [t for t in self.transactions if t.end == "done"]

    # --- the event loop's side ----------------------------------------------------------------

    async def _listen(self):
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, self.address, self.port)
        return self._server.sockets[0].getsockname()[1]

    async def _shutdown(self):
        self._server.close()
        self._stopping.set()
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=TIMEOUT)

    def _update(self, record=None, active=0):
        with self._cond:
            if record:
                self.transactions.append(record)
            if active > 0:
                self.connections += 1
            self.active += active
            self.peak = max(self.peak, self.active)
            self._cond.notify_all()

    async def _serve(self, reader, writer):
        self._tasks.add(asyncio.current_task())
        self._update(active=1)
        s = _Session(self, reader, writer, self.connections)
        try:
            await s.run()
        except (_Closed, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            s.end("aborted")
            if self._stopping.is_set() or s.dropped:
                writer.transport.abort()
            else:
                writer.close()
            self._update(active=-1)
            self._tasks.discard(asyncio.current_task())


class _Session:
    def __init__(self, rx, reader, writer, number):
        self.rx, self.reader, self.writer, self.n = rx, reader, writer, number
        self.buf, self.client = bytearray(), writer.get_extra_info("peername")[0]
        self.ehlo, self.tls, self.txn, self.dropped = None, False, None, False

    async def line(self):
        while (i := self.buf.find(b"\n")) < 0:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise _Closed()
            self.buf += chunk
        line = bytes(self.buf[:i + 1])
        del self.buf[:i + 1]
        return line

    def reply(self, *lines):
        """One reply; several lines are a multi-line one (all but the last get "code-")."""
        lines = [l[:3] + "-" + l[4:] for l in lines[:-1]] + [lines[-1]]
        self.rx.transcript.extend(f"{self.n} S: {l}" for l in lines)
        self.writer.write("".join(l + "\r\n" for l in lines).encode())

    def end(self, how, **fields):
        if self.txn:
            self.rx._update(dataclasses.replace(self.txn, end=how, **fields))
            self.txn = None

    async def run(self):
        rx = self.rx
        self.reply(rx.banner)
        if rx.banner.startswith("421"):
            return await self.writer.drain()
        while True:
            await self.writer.drain()
            raw = await self.line()
            pipelined = bool(self.buf)
            text = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            rx.transcript.append(f"{self.n} C: {text}")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                await self.writer.drain()
                return
            if not rx.banner.startswith("2"):
                self.reply("503 5.5.1 No service")
            elif verb in ("MAIL", "RCPT", "DATA"):
                if self.txn and pipelined:
                    self.txn.pipelined = True
                await getattr(self, verb.lower())(arg)
                if self.txn and pipelined:
                    self.txn.pipelined = True
            elif verb in ("EHLO", "HELO"):
                if rx.ehlo_reply:
                    self.reply(rx.ehlo_reply)
                    if rx.ehlo_reply.startswith("421"):
                        raise _Closed()
                    continue
                if verb == "EHLO" and not rx.esmtp:
                    self.reply("502 5.5.2 EHLO not supported")
                    continue
                self.end("aborted")
                self.ehlo = arg.strip()
                extensions = self.extensions() if verb == "EHLO" else []
                self.reply(f"250 {rx.name}", *[f"250 {e}" for e in extensions])
            elif verb == "STARTTLS" and rx._tls and not self.tls:
                self.end("aborted")
                self.reply("220 2.0.0 Ready to start TLS")
                await self.writer.drain()
                self.buf.clear()  # what was sent before the handshake is not to be trusted
                await self.writer.start_tls(rx._tls)
                self.tls, self.ehlo = True, None
            elif verb == "RSET":
                self.end("aborted")
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            else:
                self.reply("502 5.5.2 Command not implemented")

    def extensions(self):
        rx = self.rx
        return ([f"SIZE {rx.size}"] * (rx.size is not None) + ["PIPELINING"] * rx.pipelining +
                ["8BITMIME"] * rx.eightbitmime + ["SMTPUTF8"] * rx.smtputf8 + ["DSN"] * rx.dsn +
                ["STARTTLS"] * (rx._tls is not None and not self.tls) + ["ENHANCEDSTATUSCODES"])

    async def mail(self, arg):
        m = re.match(r"FROM:\s*<([^>]*)>(.*)$", arg, re.I)
        if self.ehlo is None:
            return self.reply("503 5.5.1 Say EHLO first")
        if self.txn:
            return self.reply("503 5.5.1 Nested MAIL command")
        if not m:
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        params = _params(m.group(2))
        reply = self.rx.mail_reply or "250 2.1.0 Ok"
        size = params.get("SIZE") or "0"
        if self.rx.size is not None and (not size.isdigit() or int(size) > self.rx.size):
            reply = "552 5.3.4 Message size exceeds fixed limit"
        self.txn = Transaction(self.client, self.ehlo, self.tls, m.group(1), params, reply)
        self.reply(reply)
        if not reply.startswith("2"):
            self.end("aborted")

    async def rcpt(self, arg):
        m = re.match(r"TO:\s*<([^>]*)>(.*)$", arg, re.I)
        if not self.txn:
            return self.reply("503 5.5.1 Need MAIL first")
        if not m:
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
        reply = next((r for pattern, r in self.rx.rcpt_replies.items()
                      if re.search(pattern, m.group(1))), "250 2.1.5 Ok")
        self.txn.rcpts.append(Rcpt(m.group(1), _params(m.group(2)), reply))
        self.reply(reply)

    async def data(self, arg):
        if not self.txn:
            return self.reply("503 5.5.1 Need MAIL first")
        if not self.txn.accepted:
            return self.reply("554 5.5.1 No valid recipients")
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        await self.writer.drain()
        with self.rx._cond:
            self.rx.in_data += 1
            self.rx.data_peak = max(self.rx.data_peak, self.rx.in_data)
        try:
            await self._data_content()
        finally:
            with self.rx._cond:
                self.rx.in_data -= 1

    async def _data_content(self):
        data = bytearray()
        while True:
            hang, drop = self.rx.hang_after, self.rx.drop_after
            if hang is not None and len(data) >= hang:
                self.end("hang", data=bytes(data))
                await self.rx._stopping.wait()
                raise _Closed()
            if drop is not None and len(data) >= drop:
                self.end("drop", data=bytes(data))
                self.dropped = True
                raise _Closed()
            line = await self.line()
            if line == b".\r\n":
                break
            data += line[1:] if line.startswith(b".") else line
        self.rx.transcript.append(f"{self.n} C: <{len(data)} bytes of DATA>")
        reply = self.rx.data_reply or f"250 2.0.0 Ok: queued as {len(self.rx.transactions) + 1}"
        self.end("done", data=bytes(data), reply=reply)
        self.reply(reply)


def _params(text):
    """ESMTP parameters: "SIZE=12 SMTPUTF8" -> {"SIZE": "12", "SMTPUTF8": None}."""
    return {k.upper(): (v if eq else None)
            for k, eq, v in (p.partition("=") for p in text.split())}
