"""A PAC server on loopback: real HTTP (or HTTPS) serving proxy auto-configuration scripts.

Independent of the rest of the sandbox: it runs its own event loop in a background thread, so
synchronous tests, asynchronous ones and a sandbox scenario can all use it. Each path has a
`PacReply` (a script, an error status, a delay, a redirect); anything else is 404. Every
response is written in one go on a TCP_NODELAY socket (no Nagle stall), then the connection
is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

from assure_doctor import httpmsg

PAC_TYPE = "application/x-ns-proxy-autoconfig"
_HEAD_LIMIT = 16384
_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 403: "Forbidden",
            404: "Not Found", 500: "Internal Server Error"}


def script_returning(rule: str) -> bytes:
    """A PAC whose FindProxyForURL returns `rule` for every URL."""
    return (f"function FindProxyForURL(url, host) {{\n  return {json.dumps(rule)};\n}}\n"
            ).encode()


@dataclass(frozen=True)
class PacReply:
    """One path's answer. `delay`: seconds before answering (a slow server); `length`: send
    Content-Length (without it, the body ends when the connection closes)."""

    body: bytes = b""
    status: int = 200
    content_type: str = PAC_TYPE
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    length: bool = True

    def encode(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}",
                 f"Content-Type: {self.content_type}", "Connection: close",
                 *(f"{name}: {value}" for name, value in self.headers)]
        if self.length:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class Request:
    """What a client asked for: the method, the path and the request's header lines."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class PacServer:
    """Serves `replies` (path → PacReply) on 127.0.0.1; HTTPS when given a server context."""

    def __init__(self, replies: Mapping[str, PacReply] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.replies = dict(replies or {})
        self.tls = tls
        self.requests: list[Request] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def url(self, path: str = "/proxy.pac") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def set(self, path: str, reply: PacReply) -> None:
        """Serve `reply` at `path` from now on."""
        self.replies[path] = reply

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="assure-pac-server",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the PAC server did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
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
        loop.set_exception_handler(lambda _loop, _context: None)  # clients that hang up
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.tls))
        except BaseException as exc:  # handed to the starting thread, which re-raises it
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        """One client: its request read, its reply written. Served by `start` in a thread of
        its own, or by any event loop's `asyncio.start_server` (the sandbox's)."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (OSError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            writer.transport.abort()
            return
        request = _parse(head[:_HEAD_LIMIT])
        self.requests.append(request)
        reply = self.replies.get(request.path.split("?")[0],
                                 PacReply(b"not found\n", 404, "text/plain"))
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            writer.write(reply.encode())
            await writer.drain()
        except OSError:
            pass
        writer.close()


def _parse(head: bytes) -> Request:
    """The request's method, path and fields, read by the one HTTP parser (h11)."""
    start, headers = httpmsg.split_head(head)
    method, path = [*start, "", ""][:2]
    return Request(method, path, headers)
