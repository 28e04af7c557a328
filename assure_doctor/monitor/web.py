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
import contextlib
import os
import socket
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from assure_doctor import http1, logs, numbers, sanitize
from assure_doctor.addresses import host_port
from assure_doctor.errors import InputError
from assure_doctor.monitor.webconfig import WebConfigFile

HEAD_TIMEOUT = 5.0  # seconds for a request head (and the TLS handshake) to arrive
WRITE_TIMEOUT = 10.0
MAX_HEAD = 8192
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 64
PROBE_RESERVE = 128  # descriptors never handed to web clients: the probes' own sockets
BACKLOG = 32  # also how many connections asyncio accepts in one go
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
           429: "Too Many Requests", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}
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
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces); errors name the flag, never the
    value."""
    host, sep, port_text = value.rpartition(":")
    port = numbers.port(port_text, low=0) if sep else None
    if port is None:
        raise InputError(f"{flag}: give HOST:PORT with a port from 0 to 65535, e.g. "
                         "127.0.0.1:10459")
    return host.strip("[]") or "0.0.0.0", port


def _why(exc: BaseException) -> str:
    """Why a listening socket failed, in words of the OS (create_server's own message
    repeats the address)."""
    errno = getattr(exc, "errno", None)
    if isinstance(exc, socket.gaierror) or not isinstance(errno, int) or errno <= 0:
        return "not an address or host name here"
    return os.strerror(errno)


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
        except (OSError, ValueError) as exc:  # ValueError: a host no resolver can take
            raise InputError(f"--web.listen-address: cannot listen there ({_why(exc)})"
                             ) from None
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
        return f"{scheme}://{host_port(host, self.port)}/metrics"

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
            peer = http1.Server(reader, writer, MAX_HEAD)
            while await self._exchange(peer, connection):
                connection.idle = True
        except (TimeoutError, http1.Closed, ConnectionError, ssl.SSLError, OSError):
            pass  # a client that is slow, gone or cut off: just drop it
        finally:
            self._connections.pop(connection, None)
            connection.close()

    async def _exchange(self, peer: http1.Server, connection: _Connection) -> bool:
        """One request and its response; True to keep the connection for another."""
        try:
            head = await asyncio.wait_for(peer.request(), HEAD_TIMEOUT)
            connection.idle = False
            request = _request(head)
            if request is None:
                raise http1.Malformed("not a request for a path here")
            length = head.content_length
            if length is not None and length > MAX_BODY:
                raise http1.TooLarge("request body not accepted", 413)
            await asyncio.wait_for(peer.body(MAX_BODY), HEAD_TIMEOUT)
        except (http1.Malformed, http1.TooLarge) as exc:
            # The client's mistake: say so, then close (what follows cannot be trusted).
            await _send(peer, text(exc.status, str(exc)), "GET", close=True)
            return False
        config = self.web_config.current()
        if config.users and not await self._authorised(request):
            response = Response(401, b"Unauthorized\n", headers=(("WWW-Authenticate",
                                                                  'Basic realm="assure"'),))
        else:
            try:
                response = await self.handler(request)
            except Exception:  # a bug of ours: answer it, log it, keep serving
                log.exception("Answering %s %s failed", request.method,
                              sanitize.text(request.path, 200))
                response = text(500, "internal error: see the monitor's log")
        response = Response(response.status, response.body, response.content_type,
                            response.headers + config.headers)
        return await _send(peer, response, request.method)

    async def _authorised(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode(
                "utf-8").partition(":")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 inside
            return False
        if not sep:
            return False
        config = self.web_config.current()
        # bcrypt takes ~70 ms at cost 10: off this loop, so that scrapes keep flowing.
        return await asyncio.to_thread(self.web_config.authorised, config, user, password)


def _request(head: http1.RequestHead) -> Request | None:
    """The request for a path of ours (origin form, HTTP/1.0 or 1.1), or None: anything else
    is a 400."""
    if head.version not in ("1.0", "1.1") or not head.target.startswith("/"):
        return None
    parts = urllib.parse.urlsplit(head.target)
    try:
        query = urllib.parse.parse_qs(parts.query, max_num_fields=16, strict_parsing=False)
    except ValueError:
        return None
    return Request(head.method, urllib.parse.unquote(parts.path), query,
                   head.fields.as_dict())


async def _send(peer: http1.Server, response: Response, method: str, *, close: bool = False
                ) -> bool:
    """Write `response` within WRITE_TIMEOUT; True when the connection stays open."""
    fields = [("Content-Type", response.content_type), *response.headers]
    return await asyncio.wait_for(
        peer.respond(response.status, REASONS.get(response.status, "Status"), fields,
                     response.body, head_only=method == "HEAD", close=close), WRITE_TIMEOUT)
