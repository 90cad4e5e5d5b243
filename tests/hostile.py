"""Hostile SMTP receivers for fault-injection tests: each misbehaves in one way a real receiver
(broken, malicious or overloaded) can, on a loopback port, in a thread of its own.

    with Hostile("trickle") as h:
        ... route a domain to 127.0.0.1:h.port ...
        h.wait_closed(1)   # sluice gave up on the connection

Modes (what happens on every connection):
  hang-banner     accepts and never says a word
  trickle         a banner that never ends: "220-" continuation lines, one byte every 0.2 s
  huge-line       a banner of one 10 MB line without an end
  many-lines      well-behaved until RCPT, then a 256-line 550 reply of 4,000-octet lines
  garbage         binary noise instead of a banner (a 3,000-octet line with a bare LF first)
  reset-data      accepts MAIL, RCPT and DATA, reads a little of the message, resets (RST)
  data-250        answers DATA with 250 (not 354), and the rest with 250 too
  tls-fail        offers STARTTLS, says 220 to it, then sends noise instead of a handshake
  close-rcpt      closes the connection after answering RCPT
Every loop is bounded: a trickle stops after TRICKLE_MAX bytes, noise after 1 MB.
"""
import asyncio
import os
import socket
import struct
import threading

TIMEOUT = 30
TRICKLE_MAX = 600  # bytes: 2 minutes at 5 bytes a second, far beyond any reply deadline
MODES = ("hang-banner", "trickle", "huge-line", "many-lines", "garbage", "reset-data",
         "data-250", "tls-fail", "close-rcpt")


class Hostile:
    def __init__(self, mode, address="127.0.0.1"):
        assert mode in MODES, mode
        self.mode, self.address, self.port = mode, address, 0
        self.connections = self.closed = 0  # accepted; ended (by the client or by us)
        self.commands = []                  # every command line received, in order
        self._cond = threading.Condition()
        self._loop = self._thread = self._server = None
        self._tasks = set()

    def start(self):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(TIMEOUT)
        return self

    def stop(self):
        if not self._thread:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        self._loop.close()
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_closed(self, n, timeout=TIMEOUT):
        """Waits until n connections have ended; raises AssertionError after timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.closed >= n, timeout):
                raise AssertionError(f"{self.mode}: {self.closed} of {n} connections ended "
                                     f"({self.connections} accepted; commands {self.commands})")

    async def _listen(self):
        self._server = await asyncio.start_server(self._serve, self.address, self.port)
        return self._server.sockets[0].getsockname()[1]

    async def _shutdown(self):
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=TIMEOUT)

    def _count(self, **delta):
        with self._cond:
            for k, v in delta.items():
                setattr(self, k, getattr(self, k) + v)
            self._cond.notify_all()

    async def _serve(self, reader, writer):
        self._tasks.add(asyncio.current_task())
        self._count(connections=1)
        try:
            await getattr(self, "_" + self.mode.replace("-", "_"))(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._count(closed=1)
            self._tasks.discard(asyncio.current_task())

    async def _until_eof(self, reader):
        """Reads and drops what the client sends until it closes (bounded by TIMEOUT)."""
        async def drain():
            while await reader.read(65536):
                pass
        await asyncio.wait_for(drain(), TIMEOUT)

    async def _command(self, reader):
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if not line:
            raise ConnectionError("client closed")
        text = line.decode("latin-1").rstrip("\r\n")
        with self._cond:
            self.commands.append(text)
        return text.split(" ")[0].upper()

    async def _conversation(self, reader, writer, answers, extensions=("PIPELINING",)):
        """A normal dialogue: answers[verb] overrides the reply to that verb (a callable is
        awaited instead and ends the conversation)."""
        writer.write(b"220 hostile.test ESMTP\r\n")
        while True:
            await writer.drain()
            verb = await self._command(reader)
            answer = answers.get(verb)
            if callable(answer):
                return await answer(reader, writer)
            if answer:
                writer.write(answer)
            elif verb == "EHLO":
                writer.write(b"250-hostile.test\r\n" +
                             b"".join(b"250-" + e.encode() + b"\r\n" for e in extensions) +
                             b"250 ENHANCEDSTATUSCODES\r\n")
            elif verb == "QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                return
            elif verb == "DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                while (await asyncio.wait_for(reader.readline(), TIMEOUT)) not in (b".\r\n", b""):
                    pass
                writer.write(b"250 2.0.0 ok\r\n")
            else:
                writer.write(b"250 2.0.0 ok\r\n")

    async def _hang_banner(self, reader, writer):
        await self._until_eof(reader)

    async def _trickle(self, reader, writer):
        line = b"220-hostile.test still thinking\r\n"
        for i in range(TRICKLE_MAX):
            writer.write(line[i % len(line):i % len(line) + 1])
            await writer.drain()
            await asyncio.sleep(0.2)

    async def _huge_line(self, reader, writer):
        writer.write(b"220 " + b"x" * (10 * 1024 * 1024))
        await writer.drain()
        await self._until_eof(reader)

    async def _many_lines(self, reader, writer):
        word = b"refused" + b"y" * 3990
        reply = b"".join(b"550-5.7.1 " + word + b"\r\n" for _ in range(255))
        reply += b"550 5.7.1 " + word + b"\r\n"
        await self._conversation(reader, writer,
                                 {"RCPT": reply, "DATA": b"554 5.5.1 no valid recipients\r\n"})

    async def _garbage(self, reader, writer):
        # A 3,000-octet binary "line" ending in a bare LF first (a parser quoting what it could
        # not read must not carry all of it into logs), then 1 MB of noise.
        line = bytes(b for b in os.urandom(4000) if b not in (10, 13))[:3000] + b"\n"
        noise = line + os.urandom(1024 * 1024)
        writer.write(noise)
        await writer.drain()
        await self._until_eof(reader)

    async def _reset_data(self, reader, writer):
        async def reset(reader, writer):
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            await reader.read(100)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self._conversation(reader, writer, {"DATA": reset})

    async def _data_250(self, reader, writer):
        await self._conversation(reader, writer, {"DATA": b"250 2.0.0 sure\r\n"})

    async def _tls_fail(self, reader, writer):
        async def noise(reader, writer):
            writer.write(b"220 2.0.0 go ahead\r\n")
            await writer.drain()
            writer.write(b"this is not a TLS server hello\r\n" * 10)
            await writer.drain()
            await self._until_eof(reader)
        await self._conversation(reader, writer, {"STARTTLS": noise},
                                 extensions=("PIPELINING", "STARTTLS"))

    async def _close_rcpt(self, reader, writer):
        async def close(reader, writer):
            writer.write(b"250 2.1.5 ok\r\n")
            await writer.drain()
        await self._conversation(reader, writer, {"RCPT": close}, extensions=())
