"""A small HTTP/1.1 server for the exporter that hostile clients cannot starve.

It runs on its own event loop in its own thread, so a busy probe loop never delays a scrape.
Connections are capped (the cap leaves file descriptors for the probes); when the cap is
reached a new connection evicts the oldest one that has not yet sent a request, so a scrape
always gets in; the request head must arrive within a few seconds and fit in 8 KiB; a
response that the client does not read is abandoned. TLS and basic auth follow the
`--web.config.file`, read again when it changes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import socket
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from assure_doctor import logs
from assure_doctor.errors import InputError
from assure_doctor.monitor.webconfig import WebConfigFile

HEAD_TIMEOUT = 5.0  # seconds for a request head (and the TLS handshake) to arrive
WRITE_TIMEOUT = 10.0
MAX_HEAD = 8192
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 64
PROBE_RESERVE = 128  # descriptors never handed to web clients: the probes' own sockets
BACKLOG = 32  # also how many connections asyncio accepts in one go
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 413: "Content Too Large", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}
log = logs.get("web")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())


Handler = Callable[[Request], Awaitable[Response]]


def text(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode())


def parse_listen(value: str, flag: str = "--web.listen-address") -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces)."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"{flag} {value!r}: give HOST:PORT, e.g. 127.0.0.1:10459")
    return host or "0.0.0.0", int(port)


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit where allowed; returns the soft limit."""
    if sys.platform == "win32":
        return 8192  # no RLIMIT_NOFILE there: the C runtime's own limit applies
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def connection_cap(fd_limit: int) -> int:
    """At most MAX_CONNECTIONS, and never more than the descriptors left after the probes'
    reserve (each accepted burst can briefly hold BACKLOG more)."""
    return max(4, min(MAX_CONNECTIONS, (fd_limit - PROBE_RESERVE - BACKLOG) // 2))


class _Connection:
    """One client; `idle` while we wait for its request head."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.idle = True

    def close(self) -> None:
        self.writer.transport.abort()


class WebServer:
    """Serves `handler` on HOST:PORT from a thread of its own."""

    def __init__(self, listen: str, handler: Handler, web_config: WebConfigFile,
                 max_connections: int) -> None:
        host, port = parse_listen(listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
        except OSError as exc:
            raise InputError(f"--web.listen-address {listen}: cannot listen "
                             f"({exc.strerror})") from None
        self.sock.setblocking(False)
        self.handler = handler
        self.web_config = web_config
        self.max_connections = max_connections
        self.loop = asyncio.new_event_loop()
        self._connections: dict[_Connection, None] = {}  # ordered: oldest first
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._ready = threading.Event()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.sock.getsockname()[0]
        scheme = "https" if self.web_config.current().tls else "http"
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{self.port}/metrics"

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(asyncio.start_server(
            self._client, sock=self.sock, limit=MAX_HEAD, backlog=BACKLOG))
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self._server.close()
            for connection in list(self._connections):
                connection.close()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    def _admit(self, connection: _Connection) -> bool:
        """Make room for a new client by evicting the oldest idle one; False when all busy."""
        if len(self._connections) >= self.max_connections:
            victim = next((c for c in self._connections if c.idle), None)
            if victim is None:
                return False
            self._connections.pop(victim)
            victim.close()
        self._connections[connection] = None
        return True

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        connection = _Connection(writer)
        if not self._admit(connection):
            connection.close()
            return
        try:
            config = self.web_config.current()
            if config.tls is not None:
                await writer.start_tls(config.tls, ssl_handshake_timeout=HEAD_TIMEOUT)
            while await self._exchange(reader, writer, connection):
                connection.idle = True
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, ssl.SSLError, OSError):
            pass  # a client that is slow, gone or speaking nonsense: just drop it
        finally:
            self._connections.pop(connection, None)
            connection.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        connection: _Connection) -> bool:
        """One request and its response; True to keep the connection for another."""
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        connection.idle = False
        request, version = _parse_head(head)
        if request is None:
            await _send(writer, text(400, "bad request"), "GET", False)
            return False
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY or "transfer-encoding" in (
                request.headers):
            await _send(writer, text(413, "request body not accepted"), request.method, False)
            return False
        if int(length):
            await asyncio.wait_for(reader.readexactly(int(length)), HEAD_TIMEOUT)
        config = self.web_config.current()
        if config.users and not await self._authorised(request):
            response = Response(401, b"Unauthorized\n", headers=(("WWW-Authenticate",
                                                                  'Basic realm="assure"'),))
        else:
            response = await self.handler(request)
        response = Response(response.status, response.body, response.content_type,
                            response.headers + config.headers)
        keep = version == "HTTP/1.1" and request.headers.get("connection", "").lower(
            ) != "close"
        await _send(writer, response, request.method, keep)
        return keep

    async def _authorised(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        config = self.web_config.current()
        # bcrypt takes ~70 ms at cost 10: off this loop, so that scrapes keep flowing.
        return await asyncio.to_thread(self.web_config.authorised, config, user, password)


def _parse_head(head: bytes) -> tuple[Request | None, str]:
    """The request line and headers, parsed totally: anything odd is a 400."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None, ""
    if version not in ("HTTP/1.0", "HTTP/1.1") or not target.startswith("/"):
        return None, ""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None, ""
        headers[name.lower()] = value.strip()
    parts = urllib.parse.urlsplit(target)
    try:
        query = urllib.parse.parse_qs(parts.query, max_num_fields=16, strict_parsing=False)
    except ValueError:
        return None, ""
    return Request(method, urllib.parse.unquote(parts.path), query, headers), version


async def _send(writer: asyncio.StreamWriter, response: Response, method: str, keep: bool
                ) -> None:
    lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
             f"Content-Type: {response.content_type}",
             f"Content-Length: {len(response.body)}",
             f"Connection: {'keep-alive' if keep else 'close'}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if method != "HEAD":
        writer.write(response.body)
    await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
