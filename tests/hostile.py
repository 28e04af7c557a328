"""Hostile HTTPS servers on loopback: a verified certificate, then misbehaviour on the wire.

Each server answers the keyless request (the clock stage) and the keyed one (the ping) with a
`Behaviour`: a coroutine that writes whatever raw bytes it likes. Connections are kept alive
between requests, as a real API gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
import threading
import zlib
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import Self

from assure_doctor import httpmsg
from assure_doctor.sandbox import pki
from assure_doctor.sandbox.stack import sandbox_ca

KEY = "hostile_" + "k3y" * 8


@dataclass(frozen=True)
class Request:
    """One request as the server read it."""

    method: str
    path: str
    key: str | None


Behaviour = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]  # True: keep alive


def date() -> str:
    return formatdate(usegmt=True)


def head(status: str, headers: dict[str, str] | None = None, body: bytes = b"",
         raw: bytes = b"") -> bytes:
    """A response with a Date and a Content-Length, plus raw header bytes (latin-1 level)."""
    fields = {"Date": date(), "Content-Length": str(len(body)), **(headers or {})}
    text = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return text.encode("latin-1") + raw + b"\r\n" + body


async def polite(request: Request, writer: asyncio.StreamWriter) -> bool:
    """What the API does: 401 without a key, 200 with it."""
    if request.key is None:
        writer.write(head("401 Unauthorized", body=b'{"message": "Missing API key"}'))
    else:
        writer.write(head("200 OK", body=b'{"message": "Ping successful"}'))
    await writer.drain()
    return True


def sends(data: bytes) -> Behaviour:
    """Answer with these exact bytes, then keep the connection."""

    async def behaviour(_request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return True

    return behaviour


# Set when the server stops: a server that stalls on purpose stalls until then at most.
_stopping: ContextVar[asyncio.Event] = ContextVar("stopping")


async def stall(seconds: float) -> bool:
    """Hold the connection for `seconds` (the slowness simulated); False if the server
    stopped meanwhile."""
    stopping = _stopping.get()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return not stopping.is_set()


async def turn() -> None:
    """Let the loop run the callbacks already due (a peer's hang-up) before going on: one
    turn of the loop, not a wait."""
    loop = asyncio.get_running_loop()
    due = loop.create_future()
    loop.call_soon(due.set_result, None)
    await due


def dribbles(data: bytes, every: float = 1.0) -> Behaviour:
    """Send the response one byte at a time, `every` seconds apart."""

    async def behaviour(_request: Request, writer: asyncio.StreamWriter) -> bool:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            if not await stall(every):
                return False
        return True

    return behaviour


def endless_chunks(status: str) -> Behaviour:
    """A chunked body that never ends, written as fast as the client reads."""

    async def behaviour(_request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(f"HTTP/1.1 {status}\r\nDate: {date()}\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Type: text/plain\r\n\r\n".encode())
        chunk = b"%x\r\n%s\r\n" % (65536, b"A" * 65536)
        while not writer.transport.is_closing():
            writer.write(chunk)
            await writer.drain()
            await turn()  # drain need not yield: let the loss of the peer arrive
        return False

    return behaviour


@cache
def gzip_bomb(size: int = 1 << 30) -> bytes:
    """`size` zero bytes, gzip-compressed (level 1 is 5x faster: 4.5 MB per GiB)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + compressor.flush()


def bomb() -> Behaviour:
    body = gzip_bomb()
    return sends(head("200 OK", {"Content-Encoding": "gzip", "Content-Type": "text/plain"},
                      body))


@dataclass
class Seen:
    connections: int = 0
    keyed: int = 0
    requests: list[Request] = field(default_factory=list)


class HostileServer:
    """An HTTPS server on 127.0.0.1 with the sandbox CA's certificate, run in a thread."""

    def __init__(self, keyed: Behaviour = polite, keyless: Behaviour = polite) -> None:
        self.keyed, self.keyless = keyed, keyless
        self.seen = Seen()
        self.port = 0
        self.workdir = Path(tempfile.mkdtemp(prefix="assure-hostile-"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = asyncio.Event()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1/ping"

    def check_args(self) -> list[str]:
        return ["--url", self.url, "--ca-bundle", str(self.workdir / "ca.pem"),
                "--api-key-file", str(self.workdir / "key")]

    def start(self) -> Self:
        (self.workdir / "ca.pem").write_bytes(sandbox_ca().cert_pem)
        (self.workdir / "key").write_text(KEY + "\n")
        (self.workdir / "key").chmod(0o600)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(30)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(lambda _loop, _context: None)
        now = datetime.now(UTC)
        leaf = pki.make_leaf(["127.0.0.1"], sandbox_ca(), now - timedelta(days=1),
                             now + timedelta(days=60))
        (self.workdir / "cert.pem").write_bytes(leaf.cert_pem)
        (self.workdir / "cert.key").write_bytes(leaf.key_pem)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.workdir / "cert.pem", self.workdir / "cert.key")
        server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0,
                                                              ssl=tls))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):  # let every handler unwind
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _stopping.set(self._stopping)  # this connection's task: its behaviours may stall
        self.seen.connections += 1
        try:
            while True:
                raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                start, headers = httpmsg.split_head(raw)
                method, path = [*start, "", ""][:2]
                request = Request(method, path, headers.get("x-api-key"))
                self.seen.requests.append(request)
                self.seen.keyed += request.key is not None
                behaviour = self.keyless if request.key is None else self.keyed
                if not await behaviour(request, writer):
                    break
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.transport.abort()
